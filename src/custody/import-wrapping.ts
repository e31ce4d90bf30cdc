import { KmsError } from '../errors';
import type { KeySpec, KeyUsageType } from '../model/generated/types';
import { familyOf } from './key-templates';

export type WrappingAlgorithm = 'RSAES_PKCS1_V1_5' | 'RSAES_OAEP_SHA_1' | 'RSAES_OAEP_SHA_256' | 'RSA_AES_KEY_WRAP_SHA_1' | 'RSA_AES_KEY_WRAP_SHA_256';
export type WrappingKeySpec = 'RSA_2048' | 'RSA_3072' | 'RSA_4096';

export interface WrappingRef {
  keyId: string;
  wrappingId: string;
}

export const WRAPPING_LABEL_PREFIX = 'p11kms-import:';

export function wrappingLabel(ref: WrappingRef): string {
  return `${WRAPPING_LABEL_PREFIX}${ref.keyId}:${ref.wrappingId}`;
}

export function parseWrappingLabel(label: string): WrappingRef | undefined {
  const match = /^p11kms-import:([0-9a-f-]{36}|mrk-[0-9a-f]{32}):([0-9a-f]{32})$/.exec(label);
  return match ? { keyId: match[1], wrappingId: match[2] } : undefined;
}

/** Which path an import takes; also what the docs and the tests name. */
export function importPath(algorithm: WrappingAlgorithm, oaepHashesInToken: readonly string[] | undefined): 'token' | 'raw-rsa-then-token' {
  const hash = algorithm.endsWith('SHA_256') ? 'sha256' : 'sha1';
  if (algorithm === 'RSAES_PKCS1_V1_5') return 'token';
  return (oaepHashesInToken ?? ['sha1', 'sha256']).includes(hash) ? 'token' : 'raw-rsa-then-token';
}

export interface ImportMaterialRequest {
  /** Written into CKA_ID of the objects an accepted import makes (see token-objects.ts). */
  creationId: string;
  wrapping: WrappingRef;
  algorithm: WrappingAlgorithm;
  wrappingKeySpec: WrappingKeySpec;
  encrypted: Buffer;
  spec: KeySpec;
  usage: KeyUsageType;
}

/**
 * Which wrapping algorithms AWS allows for private keys (GetParametersForImport's
 * WrappingAlgorithm documentation): RSA private keys only with RSA_AES_KEY_WRAP_*; ECC private
 * keys also with RSAES_OAEP_*, except ECC_NIST_P521 under an RSA_2048 wrapping key (too long
 * for one OAEP block); RSAES_PKCS1_V1_5 never.
 */
export function checkAsymmetricWrapping(spec: KeySpec, algorithm: WrappingAlgorithm, wrappingKeySpec: WrappingKeySpec): void {
  const family = familyOf(spec);
  if (family !== 'rsa' && family !== 'ec') return;
  const hybrid = algorithm === 'RSA_AES_KEY_WRAP_SHA_1' || algorithm === 'RSA_AES_KEY_WRAP_SHA_256';
  const oaepOnly = algorithm === 'RSAES_OAEP_SHA_1' || algorithm === 'RSAES_OAEP_SHA_256';
  const allowed = hybrid || (family === 'ec' && oaepOnly && !(spec === 'ECC_NIST_P521' && wrappingKeySpec === 'RSA_2048'));
  if (!allowed) {
    throw new KmsError(
      'ValidationException',
      family === 'rsa'
        ? `The wrapping algorithm ${algorithm} is not supported for ${spec} key material. RSA private keys must be wrapped with RSA_AES_KEY_WRAP_SHA_1 or RSA_AES_KEY_WRAP_SHA_256.`
        : `The wrapping algorithm ${algorithm} with wrapping key spec ${wrappingKeySpec} is not supported for ${spec} key material.`,
    );
  }
}
