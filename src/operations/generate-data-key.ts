import type { OperationHandler } from './context';
import { dataKeyLength, refuseRecipient, requireSymmetricEncryptionKey, stopIfDryRun } from './shared/checks';
import { materialIdOf, sealNewDataKey } from './shared/envelope';
import { loadKeyFor } from './shared/key-resolution';

export const generateDataKey: OperationHandler<'GenerateDataKey'> = async (input, ctx, services) => {
  refuseRecipient(input.Recipient);
  const key = await loadKeyFor(services, ctx, input.KeyId, {
    operation: 'GenerateDataKey',
    usage: 'ENCRYPT_DECRYPT',
    // kms:EncryptionAlgorithm is the algorithm used, SYMMETRIC_DEFAULT, though the request cannot name one
    // (KMS developer guide, kms:EncryptionAlgorithm: "Encryption algorithm used for the operation").
    conditions: { encryptionContext: input.EncryptionContext, encryptionAlgorithm: 'SYMMETRIC_DEFAULT' },
  });
  requireSymmetricEncryptionKey(key, 'GenerateDataKey');
  const length = dataKeyLength(input.KeySpec, input.NumberOfBytes);
  stopIfDryRun(input.DryRun);
  // The data key comes from the random number generator of the token that seals it.
  const { blob, plaintext } = await sealNewDataKey(services, { ctx, operation: 'GenerateDataKey' }, key, input.EncryptionContext, length);
  return { CiphertextBlob: blob, Plaintext: plaintext, KeyId: key.arn, KeyMaterialId: materialIdOf(key, key.currentVersion) };
};
