import type { OperationHandler } from './context';
import { checkKeyPolicy, requireDefaultPolicyName } from './shared/key-policy';
import { updateKey } from './shared/update-key';

export const putKeyPolicy: OperationHandler<'PutKeyPolicy'> = async (input, ctx, services) => {
  const bypass = input.BypassPolicyLockoutSafetyCheck;
  // kms:BypassPolicyLockoutSafetyCheck is absent when the request leaves the parameter out:
  // AWS's own example allows PutKeyPolicy with {"Null": {"kms:BypassPolicyLockoutSafetyCheck": true}}.
  await updateKey(services, ctx, input.KeyId, { operation: 'PutKeyPolicy', conditions: { bypassPolicyLockoutSafetyCheck: bypass } }, (key) => {
    requireDefaultPolicyName(input.PolicyName);
    checkKeyPolicy(services, ctx, input.Policy, key, bypass);
    return { ...key, policy: input.Policy };
  });
  return {};
};
