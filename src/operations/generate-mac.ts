import type { OperationHandler } from './context';
import { stopIfDryRun } from './shared/checks';
import { currentMaterial } from './shared/envelope';
import { loadKeyFor } from './shared/key-resolution';
import { requireMacAlgorithm } from './shared/mac';

export const generateMac: OperationHandler<'GenerateMac'> = async (input, ctx, services) => {
  const key = await loadKeyFor(services, ctx, input.KeyId, {
    operation: 'GenerateMac',
    usage: 'GENERATE_VERIFY_MAC',
    conditions: { macAlgorithm: input.MacAlgorithm },
  });
  requireMacAlgorithm(key, input.MacAlgorithm);
  stopIfDryRun(input.DryRun);
  const mac = await services.custody.signatures.mac(currentMaterial(key), key.keySpec, input.Message);
  return { Mac: mac, MacAlgorithm: input.MacAlgorithm, KeyId: key.arn };
};
