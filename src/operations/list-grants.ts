import type { OperationHandler } from './context';
import { checkGrantId, GRANTS_BY_CREATION, grantEntryOf } from './shared/grant-entries';
import { loadKeyFor } from './shared/key-resolution';
import { paginate } from './shared/pagination';

export const listGrants: OperationHandler<'ListGrants'> = async (input, ctx, services) => {
  const key = await loadKeyFor(services, ctx, input.KeyId, { operation: 'ListGrants', states: 'any', conditions: { grantIsForAWSResource: false } });
  // A GrantId filter is a grant id as RevokeGrant takes it: the model lists InvalidGrantIdException for ListGrants.
  if (input.GrantId !== undefined) checkGrantId(input.GrantId);
  const grants = (await services.store.listGrants(key)).filter(
    (g) =>
      (input.GrantId === undefined || g.grantId === input.GrantId) &&
      (input.GranteePrincipal === undefined || g.granteePrincipal === input.GranteePrincipal),
  );
  const { page, ...rest } = paginate('ListGrants', grants, GRANTS_BY_CREATION, input);
  return { Grants: page.map(grantEntryOf), ...rest };
};
