import { KmsError } from '../errors';
import { isMultiRegion, isReplica, keyArn, type KeyRecord } from '../store/records';
import type { OperationHandler, RequestContext } from './context';
import { checkKeyFor, loadKeyFor, notMultiRegionPrimary, requireEnabled } from './shared/key-resolution';

/**
 * Makes the replica in PrimaryRegion the primary and the current primary a replica. Only
 * which region is primary changes (a shared field, written to every region's record in one
 * transaction); the material is the same token objects before and after. AWS shows both
 * keys as Updating for a few seconds after the call; here the change is complete when the
 * call returns, so Updating is never observed.
 */
export const updatePrimaryRegion: OperationHandler<'UpdatePrimaryRegion'> = async (input, ctx, services) => {
  // kms:UpdatePrimaryRegion on the current primary (its key policy, its region) …
  const use = { operation: 'UpdatePrimaryRegion', states: 'any', conditions: { primaryRegion: input.PrimaryRegion } } as const;
  const primary = await loadKeyFor(services, ctx, input.KeyId, use);
  checkPrimary(primary);
  const targetScope = { region: input.PrimaryRegion, accountId: primary.accountId };
  if (input.PrimaryRegion === primary.region) {
    throw new KmsError('UnsupportedOperationException', `${keyArn(targetScope, primary.keyId)} is already the primary key; PrimaryRegion must name a region holding a replica.`);
  }
  const target = await services.store.getKey({ keyId: primary.keyId, region: input.PrimaryRegion });
  if (!target || target.accountId !== primary.accountId) {
    throw new KmsError('NotFoundException', `Key '${keyArn(targetScope, primary.keyId)}' does not exist`);
  }
  // … and on the replica that becomes primary (its key policy, its region).
  const targetCtx: RequestContext = { ...ctx, scope: targetScope };
  await checkKeyFor(services, targetCtx, target, use);
  requireEnabled(target);

  await services.store.transact(async (tx) => {
    const current = await tx.getKey(primary);
    const replica = await tx.getKey(target);
    if (!current) throw new KmsError('NotFoundException', `Key '${primary.arn}' does not exist`);
    if (!replica) throw new KmsError('NotFoundException', `Key '${target.arn}' does not exist`);
    checkPrimary(current);
    requireEnabled(replica);
    tx.putKey({ ...current, primaryRegion: input.PrimaryRegion });
  });
  return {};
};

function checkPrimary(key: KeyRecord): void {
  if (!isMultiRegion(key) || isReplica(key)) throw notMultiRegionPrimary(key);
  requireEnabled(key);
}
