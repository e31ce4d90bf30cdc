import { KmsError } from '../../errors';
import type { EncryptionAlgorithmSpec } from '../../model/generated/types';
import type { KeyRecord } from '../../store/records';
import type { Services } from '../context';
import { oaepHashOf, rsaPlaintextLimit } from './algorithms';
import { currentMaterial } from './envelope';

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
  rejectContext(context);
  const limit = rsaPlaintextLimit(key.keySpec, algorithm);
  if (plaintext.length > limit) {
    throw new KmsError('ValidationException', `Algorithm ${algorithm} and key spec ${key.keySpec} cannot encrypt data larger than ${limit} bytes.`);
  }
  return services.custody.asymmetric.rsaEncrypt(currentMaterial(key), key.keySpec, oaepHashOf(algorithm), plaintext);
}

export async function rsaDecrypt(
  services: Services,
  key: KeyRecord,
  algorithm: EncryptionAlgorithmSpec,
  context: Record<string, string> | undefined,
  ciphertext: Buffer,
): Promise<Buffer> {
  rejectContext(context);
  if (ciphertext.length !== Number(key.keySpec.slice('RSA_'.length)) / 8) throw new KmsError('InvalidCiphertextException', '');
  return services.custody.asymmetric.rsaDecrypt(currentMaterial(key), oaepHashOf(algorithm), ciphertext);
}

function rejectContext(context: Record<string, string> | undefined): void {
  if (context && Object.keys(context).length > 0) {
    throw new KmsError('ValidationException', 'EncryptionContext is not supported with asymmetric KMS keys.');
  }
}
