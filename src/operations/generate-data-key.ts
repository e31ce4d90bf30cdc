import type { OperationHandler } from './context';
import { PayloadKind } from './shared/ciphertext';
import { dataKeyLength, refuseRecipient, stopIfDryRun } from './shared/checks';
import { materialIdOf, seal } from './shared/envelope';
import { loadKeyFor } from './shared/key-resolution';

export const generateDataKey: OperationHandler<'GenerateDataKey'> = async (input, ctx, services) => {
  refuseRecipient(input.Recipient);
  const key = await loadKeyFor(services, ctx, input.KeyId, {
    operation: 'GenerateDataKey',
    usage: 'ENCRYPT_DECRYPT',
    conditions: { encryptionContext: input.EncryptionContext },
  });
  const length = dataKeyLength(input.KeySpec, input.NumberOfBytes);
  stopIfDryRun(input.DryRun);
  // The data key comes from the token's random number generator.
  const plaintext = await services.custody.random(length);
  const blob = await seal(services, { ctx, operation: 'GenerateDataKey' }, key, input.EncryptionContext, { kind: PayloadKind.Plaintext, plaintext });
  return { CiphertextBlob: blob, Plaintext: plaintext, KeyId: key.arn, KeyMaterialId: materialIdOf(key, key.currentVersion) };
};
