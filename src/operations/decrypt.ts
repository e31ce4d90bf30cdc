import type { OperationHandler } from './context';
import { refuseRecipient, requireEncryptionAlgorithm, stopIfDryRun } from './shared/checks';
import { keyOfCiphertext } from './shared/ciphertext-key';
import { materialIdOf, open, plaintextOf } from './shared/envelope';
import { checkKeyFor } from './shared/key-resolution';

export const decrypt: OperationHandler<'Decrypt'> = async (input, ctx, services) => {
  refuseRecipient(input.Recipient);
  const { key, parsed } = await keyOfCiphertext(services, ctx, input.CiphertextBlob, {
    operation: 'Decrypt',
    member: 'KeyId',
    value: input.KeyId,
  });
  checkKeyFor(ctx, key, { operation: 'Decrypt', usage: 'ENCRYPT_DECRYPT' });
  requireEncryptionAlgorithm(key, input.EncryptionAlgorithm);
  stopIfDryRun(input.DryRun);
  const payload = await open(services, key, parsed, input.EncryptionContext);
  return {
    KeyId: key.arn,
    Plaintext: await plaintextOf(services, key, parsed, payload),
    EncryptionAlgorithm: 'SYMMETRIC_DEFAULT',
    KeyMaterialId: materialIdOf(key, parsed.materialVersion),
  };
};
