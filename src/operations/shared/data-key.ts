import type { OperationShapes } from '../../model/generated/types';
import type { KeyRecord } from '../../store/records';
import type { RequestContext, Services } from '../context';
import { dataKeyLength, requireSymmetricEncryptionKey } from './checks';
import { loadKeyFor } from './key-resolution';

/**
 * What GenerateDataKey and GenerateDataKeyWithoutPlaintext check alike before a data key is
 * made: the caller may use the key to encrypt (with the encryption context as a condition),
 * it is a symmetric encryption key, and KeySpec or NumberOfBytes gives one length. Returns
 * the key and the data key's length in bytes.
 */
export async function loadDataKeyRequest(
  services: Services,
  ctx: RequestContext,
  operation: 'GenerateDataKey' | 'GenerateDataKeyWithoutPlaintext',
  input: Pick<OperationShapes['GenerateDataKey']['input'], 'KeyId' | 'EncryptionContext' | 'KeySpec' | 'NumberOfBytes'>,
): Promise<{ key: KeyRecord; length: number }> {
  const key = await loadKeyFor(services, ctx, input.KeyId, {
    operation,
    usage: 'ENCRYPT_DECRYPT',
    // kms:EncryptionAlgorithm is the algorithm used, SYMMETRIC_DEFAULT, though the request cannot name one
    // (KMS developer guide, kms:EncryptionAlgorithm: "Encryption algorithm used for the operation").
    conditions: { encryptionContext: input.EncryptionContext, encryptionAlgorithm: 'SYMMETRIC_DEFAULT' },
  });
  requireSymmetricEncryptionKey(key, operation);
  return { key, length: dataKeyLength(input.KeySpec, input.NumberOfBytes) };
}
