import type { OperationHandler } from './context';
import { POLICY_NAME, requireDefaultPolicyName } from './shared/key-policy';
import { loadKeyFor } from './shared/key-resolution';

export const getKeyPolicy: OperationHandler<'GetKeyPolicy'> = async (input, ctx, services) => {
  const key = await loadKeyFor(services, ctx, input.KeyId, { operation: 'GetKeyPolicy', states: 'any' });
  requireDefaultPolicyName(input.PolicyName);
  return { Policy: key.policy, PolicyName: POLICY_NAME };
};
