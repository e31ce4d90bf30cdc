import type { OperationHandler } from './context';
import { stopIfDryRun } from './shared/checks';
import { currentMaterial } from './shared/envelope';
import { loadSigningKey } from './shared/signing';

export const sign: OperationHandler<'Sign'> = async (input, ctx, services) => {
  const { key, messageType } = await loadSigningKey(services, ctx, 'Sign', input);
  stopIfDryRun(input.DryRun);
  const signature = await services.custody.signatures.sign(currentMaterial(key), key.keySpec, input.SigningAlgorithm, messageType, input.Message);
  return { KeyId: key.arn, Signature: signature, SigningAlgorithm: input.SigningAlgorithm };
};
