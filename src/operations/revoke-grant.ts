import type { OperationHandler } from './context';
import { stopIfDryRun } from './shared/checks';
import { checkGrantId, grantNotFound, isGrantOn } from './shared/grant-entries';
import { loadKeyFor } from './shared/key-resolution';

export const revokeGrant: OperationHandler<'RevokeGrant'> = async (input, ctx, services) => {
  const key = await loadKeyFor(services, ctx, input.KeyId, { operation: 'RevokeGrant', states: 'any', conditions: { grantIsForAWSResource: false } });
  checkGrantId(input.GrantId);
  const grant = await services.store.getGrant(input.GrantId);
  if (!grant || !isGrantOn(grant, key)) throw grantNotFound(input.GrantId);
  stopIfDryRun(input.DryRun);
  await services.store.transact(async (tx) => {
    if (!(await tx.getGrant(input.GrantId))) throw grantNotFound(input.GrantId);
    tx.deleteGrant(input.GrantId);
  });
  return {};
};
