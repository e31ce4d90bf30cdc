import { randomUUID } from 'node:crypto';
import { type AuditSink, keyDeletedEvent } from '../audit/event';
import type { Services } from '../operations';
import { materialRefOf, removeFromToken } from '../operations/shared/key-mutation';
import { DAY_MS } from '../operations/shared/rotation';
import { isMultiRegion, isReplica } from '../store/records';

/** ScheduleKeyDeletion's default, for a primary whose record predates its window being kept. */
const DEFAULT_WINDOW_DAYS = 30;
import { PeriodicSweep } from './periodic-sweep';
import { changeCarryingRecord, recordChange } from './service-records';

/**
 * Deletes keys whose waiting period has ended. The decision is one store transaction
 * (still pending deletion, still due), so a CancelKeyDeletion that wins the race keeps its
 * key; then every version of the key's material is destroyed in the token, by creation id. A
 * crash between the two leaves unreferenced token objects, which reconciliation destroys.
 * Runs at start-up and then periodically.
 */
export class DeletionSweeper extends PeriodicSweep<string[]> {
  private orphanGrantsRemoved = false;

  constructor(
    services: Services,
    intervalMs: number,
    /** Absent only in tests that exercise the sweeper without a trail. */
    private readonly audit?: AuditSink,
  ) {
    super(services, intervalMs, 'deletion sweep failed');
  }

  protected nothing(): string[] {
    return [];
  }

  /** Deletes every key that is due; returns their ids. */
  protected async sweepOnce(): Promise<string[]> {
    if (!this.orphanGrantsRemoved) {
      await this.removeOrphanGrants();
      this.orphanGrantsRemoved = true;
    }
    const now = this.services.clock.now();
    const due = (await this.services.store.listKeys()).filter(
      (k) => k.keyState === 'PendingDeletion' && k.deletionDate !== undefined && k.deletionDate <= now,
    );
    const deleted: string[] = [];
    for (const candidate of due) {
      // The deletion commits with its record in the audit outbox (its materials as read now;
      // the record written below names what the transaction found), under one eventID.
      const eventID = randomUUID();
      const provisional = () => ({ ...keyDeletedEvent(candidate, now, isMultiRegion(candidate) ? [] : candidate.materials.map((m) => m.materialId)), eventID });
      const remove = () => removeFromToken(this.services, candidate.keyId, async (tx) => {
        const current = await tx.getKey(candidate);
        if (!current || current.keyState !== 'PendingDeletion' || current.deletionDate === undefined || current.deletionDate > now) {
          return { value: undefined };
        }
        tx.deleteKey(current);
        for (const alias of await tx.listAliases(current)) {
          if (alias.targetKeyId === current.keyId) tx.deleteAlias(current, alias.aliasName);
        }
        // AWS: a key's grants end with the key.
        for (const grant of await tx.listGrants(current)) tx.deleteGrant(grant.grantId);
        // The other regions of a multi-Region key share the material: it is destroyed with
        // the last record that refers to it, never before.
        const remaining = await tx.listKeyRegions(current.keyId);
        const primary = remaining.find((r) => !isReplica(r));
        if (primary?.keyState === 'PendingReplicaDeletion' && !remaining.some((r) => isReplica(r))) {
          // The last replica is gone: the primary's own waiting period starts now, as on AWS.
          tx.putKey({ ...primary, keyState: 'PendingDeletion', deletionDate: now + (primary.pendingWindowInDays ?? DEFAULT_WINDOW_DAYS) * DAY_MS });
        }
        const lastRegion = remaining.length === 0;
        return {
          value: { key: current, lastRegion },
          // An AWS_CLOUDHSM key's material is in its store's backend token (destroyed there, or
          // once the store connects again); an external key store key's is in the main token.
          materials: lastRegion ? current.materials.map((m) => materialRefOf(current.keyId, m)) : [],
          ...(current.origin === 'AWS_CLOUDHSM' ? { customKeyStoreId: current.customKeyStoreId } : {}),
          wrappingKeys: (current.importParameters ?? []).map((p) => ({ keyId: current.keyId, wrappingId: p.wrappingId })),
        };
      });
      const outcome = await changeCarryingRecord(this.services, eventID, provisional, remove);
      if (!outcome) continue;
      const { key, lastRegion } = outcome;
      deleted.push(key.keyId);
      this.services.log.info({ keyId: key.keyId, arn: key.arn, materialDestroyed: lastRegion }, 'key deleted at the end of its waiting period');
      // Recorded once the deletion is irreversible.
      const event = { ...keyDeletedEvent(key, this.services.clock.now(), lastRegion ? key.materials.map((m) => m.materialId) : []), eventID };
      await recordChange(this.services, this.audit, event, { keyId: key.keyId, message: 'key deletion could not be recorded in the audit trail' });
    }
    return deleted;
  }

  /** Grants left behind by keys deleted before p11kms removed grants with their key (first sweep only). */
  private async removeOrphanGrants(): Promise<void> {
    const orphans: string[] = [];
    for (const grant of await this.services.store.listGrants()) {
      if (!(await this.services.store.getKey(grant))) orphans.push(grant.grantId);
    }
    if (orphans.length === 0) return;
    await this.services.store.transact((tx) => {
      for (const id of orphans) tx.deleteGrant(id);
    });
    this.services.log.info({ grants: orphans.length }, 'removed the grants of keys deleted earlier');
  }
}
