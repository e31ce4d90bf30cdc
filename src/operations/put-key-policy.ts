import { KmsError } from '../errors';
import type { OperationHandler } from './context';
import { checkKeyPolicy, POLICY_NAME } from './shared/key-policy';
import { updateKey } from './shared/update-key';

export const putKeyPolicy: OperationHandler<'PutKeyPolicy'> = async (input, ctx, services) => {
  const name = input.PolicyName ?? POLICY_NAME;
  if (name !== POLICY_NAME) {
    throw new KmsError('ValidationException', `PolicyName ${name} is not valid; the only key policy name is "${POLICY_NAME}".`);
  }
  const bypass = input.BypassPolicyLockoutSafetyCheck;
  // kms:BypassPolicyLockoutSafetyCheck is absent when the request leaves the parameter out:
  // AWS's own example allows PutKeyPolicy with {"Null": {"kms:BypassPolicyLockoutSafetyCheck": true}}.
  await updateKey(services, ctx, input.KeyId, { operation: 'PutKeyPolicy', conditions: { bypassPolicyLockoutSafetyCheck: bypass } }, (key) => {
    checkKeyPolicy(services, ctx, input.Policy, key, bypass);
    return { ...key, policy: input.Policy };
  });
  return {};
};
