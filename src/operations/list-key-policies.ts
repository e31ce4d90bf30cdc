import type { OperationHandler } from './context';
import { POLICY_NAME } from './shared/key-policy';
import { loadKeyFor } from './shared/key-resolution';
import { listOrder, paginate } from './shared/pagination';

const BY_NAME = listOrder(['string'], (name: string) => [name]);

export const listKeyPolicies: OperationHandler<'ListKeyPolicies'> = async (input, ctx, services) => {
  await loadKeyFor(services, ctx, input.KeyId, { operation: 'ListKeyPolicies', states: 'any' });
  const { page, ...rest } = paginate('ListKeyPolicies', [POLICY_NAME], BY_NAME, input);
  return { PolicyNames: page, ...rest };
};
