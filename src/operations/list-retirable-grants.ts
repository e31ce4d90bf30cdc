import { accountOfPrincipal } from '../access/principal-matching';
import { KmsError } from '../errors';
import type { OperationHandler } from './context';
import { GRANTS_BY_CREATION, grantEntryOf } from './shared/grant-entries';
import { checkAccountAction } from './shared/key-resolution';
import { paginate } from './shared/pagination';

/**
 * The grants of this region whose retiring principal is the one named. As AWS: the IAM
 * resource is that principal, and it must be of the caller's account (strict mode).
 */
export const listRetirableGrants: OperationHandler<'ListRetirableGrants'> = async (input, ctx, services) => {
  checkAccountAction(services, ctx, 'kms:ListRetirableGrants', {}, input.RetiringPrincipal);
  if (services.access?.enforce && accountOfPrincipal(input.RetiringPrincipal) !== ctx.caller.accountId) {
    throw new KmsError(
      'AccessDeniedException',
      `User: ${ctx.caller.principalArn} is not authorized to perform: kms:ListRetirableGrants on resource: ${input.RetiringPrincipal} because no resource-based policy allows the kms:ListRetirableGrants action`,
    );
  }
  const grants = [];
  for (const grant of await services.store.listGrants()) {
    // Grants of keys that were deleted since are gone with their key.
    if (grant.region === ctx.scope.region && grant.retiringPrincipal === input.RetiringPrincipal && (await services.store.getKey(grant))) grants.push(grant);
  }
  const { page, ...rest } = paginate('ListRetirableGrants', grants, GRANTS_BY_CREATION, input);
  return { Grants: page.map(grantEntryOf), ...rest };
};
