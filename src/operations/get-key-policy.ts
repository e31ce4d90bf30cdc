import { KmsError } from '../errors';
import type { OperationHandler } from './context';
import { POLICY_NAME } from './shared/key-policy';
import { loadKeyFor } from './shared/key-resolution';

export const getKeyPolicy: OperationHandler<'GetKeyPolicy'> = async (input, ctx, services) => {
  const key = await loadKeyFor(services, ctx, input.KeyId, { operation: 'GetKeyPolicy', states: 'any' });
  const name = input.PolicyName ?? POLICY_NAME;
  if (name !== POLICY_NAME) throw new KmsError('NotFoundException', `No such policy exists: ${name}`);
  return { Policy: key.policy, PolicyName: POLICY_NAME };
};
