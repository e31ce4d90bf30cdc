import type { OperationHandler } from './context';
import { refuseRecipient, stopIfDryRun } from './shared/checks';
import { openCiphertext, plaintextOf, stopAfterOpening } from './shared/decryption';

export const decrypt: OperationHandler<'Decrypt'> = async (input, ctx, services) => {
  refuseRecipient(input.Recipient);
  const opened = await openCiphertext(services, ctx, {
    operation: 'Decrypt',
    member: 'KeyId',
    action: 'kms:Decrypt',
    blob: input.CiphertextBlob,
    keyId: input.KeyId,
    algorithm: input.EncryptionAlgorithm,
    context: input.EncryptionContext,
    dryRun: input.DryRun,
    dryRunModifiers: input.DryRunModifiers,
    stopIfDryRun,
  });
  stopAfterOpening(opened, input.DryRun, stopIfDryRun);
  return {
    KeyId: opened.key.arn,
    Plaintext: await plaintextOf(services, opened),
    EncryptionAlgorithm: opened.algorithm,
    KeyMaterialId: opened.keyMaterialId,
  };
};
