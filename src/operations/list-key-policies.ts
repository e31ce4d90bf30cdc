import type { OperationHandler } from './context';
import { POLICY_NAME } from './shared/key-policy';
import { loadKeyFor } from './shared/key-resolution';
import { paginate } from './shared/pagination';

export const listKeyPolicies: OperationHandler<'ListKeyPolicies'> = async (input, ctx, services) => {
  await loadKeyFor(services, ctx, input.KeyId, { operation: 'ListKeyPolicies', allowedStates: 'any' });
  const { page, ...rest } = paginate([POLICY_NAME], (n) => n, input.Limit, input.Marker);
  return { PolicyNames: page, ...rest };
};
