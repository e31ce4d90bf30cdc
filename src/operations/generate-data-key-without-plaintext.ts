import type { OperationHandler } from './context';
import { PayloadKind } from './shared/ciphertext';
import { dataKeyLength, requireSymmetricEncryptionKey, stopIfDryRun } from './shared/checks';
import { currentMaterial, materialIdOf, seal } from './shared/envelope';
import { loadKeyFor } from './shared/key-resolution';
import { custodyOf } from './shared/custom-key-stores';

export const generateDataKeyWithoutPlaintext: OperationHandler<'GenerateDataKeyWithoutPlaintext'> = async (input, ctx, services) => {
  const key = await loadKeyFor(services, ctx, input.KeyId, {
    operation: 'GenerateDataKeyWithoutPlaintext',
    usage: 'ENCRYPT_DECRYPT',
    // kms:EncryptionAlgorithm is the algorithm used, SYMMETRIC_DEFAULT, though the request cannot name one
    // (KMS developer guide, kms:EncryptionAlgorithm: "Encryption algorithm used for the operation").
    conditions: { encryptionContext: input.EncryptionContext, encryptionAlgorithm: 'SYMMETRIC_DEFAULT' },
  });
  requireSymmetricEncryptionKey(key, 'GenerateDataKeyWithoutPlaintext');
  const length = dataKeyLength(input.KeySpec, input.NumberOfBytes);
  const custody = custodyOf(services, key);
  custody.symmetric.checkSecretLength(length);
  stopIfDryRun(input.DryRun);
  // Generated and wrapped inside the token: the plaintext data key never exists here.
  const wrapped = await custody.symmetric.generateWrappedSecret(currentMaterial(key), length);
  const blob = await seal(services, { ctx, operation: 'GenerateDataKeyWithoutPlaintext' }, key, input.EncryptionContext, { kind: PayloadKind.WrappedSecret, wrapped, length }, 'continuing');
  return { CiphertextBlob: blob, KeyId: key.arn, KeyMaterialId: materialIdOf(key, key.currentVersion) };
};
