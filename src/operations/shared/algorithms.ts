import { signingAlgorithmsFor } from '../../custody/signing';
import { incompatibleAlgorithm } from '../../errors';
import type { EncryptionAlgorithmSpec, KeyAgreementAlgorithmSpec, KeySpec, KeyUsageType, MacAlgorithmSpec, SigningAlgorithmSpec } from '../../model/generated/types';
import type { KeyRecord } from '../../store/records';

export function isRsa(spec: KeySpec): boolean {
  return spec.startsWith('RSA_');
}

/** The algorithm lists KeyMetadata and GetPublicKey report for a key (recorded §1). */
export function algorithmsOf(spec: KeySpec, usage: KeyUsageType): {
  EncryptionAlgorithms?: EncryptionAlgorithmSpec[];
  SigningAlgorithms?: SigningAlgorithmSpec[];
  KeyAgreementAlgorithms?: KeyAgreementAlgorithmSpec[];
  MacAlgorithms?: MacAlgorithmSpec[];
} {
  if (spec === 'SYMMETRIC_DEFAULT') return { EncryptionAlgorithms: ['SYMMETRIC_DEFAULT'] };
  if (spec.startsWith('HMAC_')) return { MacAlgorithms: [macAlgorithmOf(spec)] };
  if (usage === 'ENCRYPT_DECRYPT') return { EncryptionAlgorithms: ['RSAES_OAEP_SHA_1', 'RSAES_OAEP_SHA_256'] };
  if (usage === 'KEY_AGREEMENT') return { KeyAgreementAlgorithms: ['ECDH'] };
  return { SigningAlgorithms: signingAlgorithmsFor(spec) };
}

export function macAlgorithmOf(spec: KeySpec): MacAlgorithmSpec {
  return `HMAC_SHA_${spec.slice('HMAC_'.length)}` as MacAlgorithmSpec;
}

/**
 * The encryption algorithm a request names must suit the key: SYMMETRIC_DEFAULT (the
 * default when none is named) for symmetric keys, an RSAES_OAEP algorithm for RSA keys.
 */
export function encryptionAlgorithmFor(key: KeyRecord, requested: EncryptionAlgorithmSpec | undefined): EncryptionAlgorithmSpec {
  const algorithm = requested ?? 'SYMMETRIC_DEFAULT';
  const allowed = algorithmsOf(key.keySpec, key.keyUsage).EncryptionAlgorithms ?? [];
  if (!allowed.includes(algorithm)) {
    throw incompatibleAlgorithm(algorithm, key.keySpec);
  }
  return algorithm;
}

/** Largest plaintext RSA-OAEP can take: k - 2·hLen - 2 bytes (214/190 for RSA_2048). */
export function rsaPlaintextLimit(spec: KeySpec, algorithm: EncryptionAlgorithmSpec): number {
  const modulusBytes = Number(spec.slice('RSA_'.length)) / 8;
  const hashBytes = algorithm === 'RSAES_OAEP_SHA_1' ? 20 : 32;
  return modulusBytes - 2 * hashBytes - 2;
}

export function oaepHashOf(algorithm: EncryptionAlgorithmSpec): 'sha1' | 'sha256' {
  return algorithm === 'RSAES_OAEP_SHA_1' ? 'sha1' : 'sha256';
}
