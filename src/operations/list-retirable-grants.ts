import type { OperationHandler } from './context';
import { GRANTS_BY_CREATION, grantEntryOf } from './shared/grant-entries';
import { checkAccountAction } from './shared/key-resolution';
import { paginate } from './shared/pagination';

export const listRetirableGrants: OperationHandler<'ListRetirableGrants'> = async (input, ctx, services) => {
  checkAccountAction(services, ctx, 'kms:ListRetirableGrants');
  const grants = [];
  for (const grant of await services.store.listGrants()) {
    // Grants of keys that were deleted since are gone with their key.
    if (grant.retiringPrincipal === input.RetiringPrincipal && (await services.store.getKey(grant))) grants.push(grant);
  }
  const { page, ...rest } = paginate('ListRetirableGrants', grants, GRANTS_BY_CREATION, input);
  return { Grants: page.map(grantEntryOf), ...rest };
};
