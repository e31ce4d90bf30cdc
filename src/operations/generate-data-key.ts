import type { OperationHandler } from './context';
import { refuseRecipient, stopIfDryRun } from './shared/checks';
import { loadDataKeyRequest } from './shared/data-key';
import { materialIdOf, sealNewDataKey } from './shared/envelope';

export const generateDataKey: OperationHandler<'GenerateDataKey'> = async (input, ctx, services) => {
  refuseRecipient(input.Recipient);
  const { key, length } = await loadDataKeyRequest(services, ctx, 'GenerateDataKey', input);
  stopIfDryRun(input.DryRun);
  // The data key comes from the random number generator of the token that seals it.
  const { blob, plaintext } = await sealNewDataKey(services, { ctx, operation: 'GenerateDataKey' }, key, input.EncryptionContext, length);
  return { CiphertextBlob: blob, Plaintext: plaintext, KeyId: key.arn, KeyMaterialId: materialIdOf(key, key.currentVersion) };
};
