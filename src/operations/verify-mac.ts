import { KmsError } from '../errors';
import type { OperationHandler } from './context';
import { stopIfDryRun } from './shared/checks';
import { currentMaterial } from './shared/envelope';
import { loadMacKey } from './shared/mac';

export const verifyMac: OperationHandler<'VerifyMac'> = async (input, ctx, services) => {
  const key = await loadMacKey(services, ctx, 'VerifyMac', input.KeyId, input.MacAlgorithm);
  stopIfDryRun(input.DryRun);
  const valid = await services.custody.signatures.verifyMac(currentMaterial(key), key.keySpec, input.Message, input.Mac);
  if (!valid) throw new KmsError('KMSInvalidMacException', '');
  return { KeyId: key.arn, MacValid: true, MacAlgorithm: input.MacAlgorithm };
};
