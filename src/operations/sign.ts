import type { OperationHandler } from './context';
import { stopIfDryRun } from './shared/checks';
import { currentMaterial } from './shared/envelope';
import { loadKeyFor } from './shared/key-resolution';

export const sign: OperationHandler<'Sign'> = async (input, ctx, services) => {
  const key = await loadKeyFor(services, ctx, input.KeyId, {
    operation: 'Sign',
    usage: 'SIGN_VERIFY',
    conditions: { signingAlgorithm: input.SigningAlgorithm, messageType: input.MessageType ?? 'RAW' },
  });
  const messageType = input.MessageType ?? 'RAW';
  services.custody.signatures.checkSignatureRequest(key.keySpec, input.SigningAlgorithm, messageType, input.Message);
  stopIfDryRun(input.DryRun);
  const signature = await services.custody.signatures.sign(currentMaterial(key), key.keySpec, input.SigningAlgorithm, messageType, input.Message);
  return { KeyId: key.arn, Signature: signature, SigningAlgorithm: input.SigningAlgorithm };
};
