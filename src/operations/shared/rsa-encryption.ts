import { KmsError } from '../../errors';
import type { EncryptionAlgorithmSpec } from '../../model/generated/types';
import type { KeyRecord } from '../../store/records';
import type { Services } from '../context';
import { oaepHashOf, rsaPlaintextLimit } from './algorithms';
import { currentMaterial } from './envelope';

/**
 * What makes an RSA encryption request invalid whatever the key holds: an encryption context,
 * or (when known) a plaintext over the OAEP limit. Checked before DryRun answers, so DryRun
 * never says a request "would have succeeded" that would not.
 */
export function checkRsaEncryption(key: KeyRecord, algorithm: EncryptionAlgorithmSpec, context: Record<string, string> | undefined, plaintextLength?: number): void {
  refuseAsymmetricContext(context);
  const limit = rsaPlaintextLimit(key.keySpec, algorithm);
  if (plaintextLength !== undefined && plaintextLength > limit) {
    throw new KmsError('ValidationException', `Algorithm ${algorithm} and key spec ${key.keySpec} cannot encrypt data larger than ${limit} bytes.`);
  }
}

/**
 * RSA keys encrypt without an envelope: the ciphertext is the bare RSAES-OAEP output, so
 * ciphertexts made outside p11kms with the public key decrypt here, as on AWS.
 */
export async function rsaEncrypt(
  services: Services,
  key: KeyRecord,
  algorithm: EncryptionAlgorithmSpec,
  context: Record<string, string> | undefined,
  plaintext: Buffer,
): Promise<Buffer> {
  checkRsaEncryption(key, algorithm, context, plaintext.length);
  return services.custody.asymmetric.rsaEncrypt(currentMaterial(key), key.keySpec, oaepHashOf(algorithm), plaintext);
}

export async function rsaDecrypt(
  services: Services,
  key: KeyRecord,
  algorithm: EncryptionAlgorithmSpec,
  context: Record<string, string> | undefined,
  ciphertext: Buffer,
): Promise<Buffer> {
  refuseAsymmetricContext(context);
  if (ciphertext.length !== Number(key.keySpec.slice('RSA_'.length)) / 8) throw new KmsError('InvalidCiphertextException', '');
  return services.custody.asymmetric.rsaDecrypt(currentMaterial(key), oaepHashOf(algorithm), ciphertext);
}

export function refuseAsymmetricContext(context: Record<string, string> | undefined): void {
  if (context && Object.keys(context).length > 0) {
    throw new KmsError('ValidationException', 'EncryptionContext is not supported with asymmetric KMS keys.');
  }
}
