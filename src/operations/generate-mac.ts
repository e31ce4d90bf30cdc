import type { OperationHandler } from './context';
import { stopIfDryRun } from './shared/checks';
import { currentMaterial } from './shared/envelope';
import { loadMacKey } from './shared/mac';

export const generateMac: OperationHandler<'GenerateMac'> = async (input, ctx, services) => {
  const key = await loadMacKey(services, ctx, 'GenerateMac', input.KeyId, input.MacAlgorithm);
  stopIfDryRun(input.DryRun);
  const mac = await services.custody.signatures.mac(currentMaterial(key), key.keySpec, input.Message);
  return { Mac: mac, MacAlgorithm: input.MacAlgorithm, KeyId: key.arn };
};
