import { KmsError } from '../../errors';
import { isMultiRegion, type KeyRecord } from '../../store/records';
import type { RequestContext, Services } from '../context';
import { effectiveKeyState } from './custom-key-stores';
import { mutateKey } from './key-mutation';
import { type KeyUse, loadKeyFor } from './key-resolution';
import { requireKeyState } from './key-states';

/**
 * Read-modify-write of one key: the reference is resolved and authorised first, then
 * `change` runs on the freshest record inside a store transaction, so concurrent updates
 * never lose each other. The key states `use.states` names (default: any) are checked on
 * that record too, so a state change racing this update is seen. `change` throws to refuse. `regions` is every
 * region's record of the key (just the key unless it is multi-Region), read in the same
 * transaction.
 */
export async function updateKey(
  services: Services,
  ctx: RequestContext,
  keyIdValue: string,
  use: KeyUse,
  change: (key: KeyRecord, regions: readonly KeyRecord[]) => KeyRecord,
): Promise<KeyRecord> {
  const states = use.states ?? 'any';
  const found = await loadKeyFor(services, ctx, keyIdValue, { ...use, states });
  return mutateKey(services, found.keyId, () =>
    services.store.transact(async (tx) => {
      const current = await tx.getKey(found);
      if (!current) throw new KmsError('NotFoundException', `Key '${found.arn}' does not exist`);
      requireKeyState(current, states, effectiveKeyState(services, current));
      const next = change(current, isMultiRegion(current) ? await tx.listKeyRegions(current.keyId) : [current]);
      if (next !== current) tx.putKey(next);
      return next;
    }),
  );
}
