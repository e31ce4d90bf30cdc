import { randomUUID } from 'node:crypto';
import { type AuditSink, importedMaterialExpiredEvent, keyRotatedEvent } from '../audit/event';
import type { Services } from '../operations';
import { PeriodicSweep } from './periodic-sweep';
import { withoutImportedMaterial } from '../operations/shared/import-state';
import { materialRefOf, removeFromToken } from '../operations/shared/key-mutation';
import { rotateKey, rotationOf } from '../operations/shared/rotation';
import { BackgroundLockLostError } from '../errors';
import { isReplica, type KeyRecord } from '../store/records';
import { periodicReconcileOptions, reconcile, reconcileBackends } from './reconcile';
import { changeCarryingRecord, recordChange } from './service-records';

const MATERIAL_EVENT_UNRECORDED = 'key material event could not be recorded in the audit trail';

export interface MaterialSweepResult {
  rotated: string[];
  expired: string[];
  wrappingKeysDestroyed: number;
}

/**
 * The background work on key material, the rotation counterpart of the DeletionSweeper
 * (same shape, same injectable clock): automatic rotations that are due, imported material
 * whose ValidTo has passed, and import wrapping keys whose 24 hours are over. Runs at
 * start-up, so a due date missed while the service was down is caught up at once, and then
 * periodically. Disabled keys and keys pending deletion or import are not rotated; a key
 * re-enabled after its date rotates at the next sweep, as AWS does.
 */
export class MaterialSweeper extends PeriodicSweep<MaterialSweepResult> {
  constructor(
    services: Services,
    intervalMs: number,
    private readonly audit?: AuditSink,
    /** Set: each sweep ends with a reconciliation whose intents live this long (app.ts). */
    private readonly intentLeaseMs?: number,
  ) {
    super(services, intervalMs, 'key material sweep failed');
  }

  protected nothing(): MaterialSweepResult {
    return { rotated: [], expired: [], wrappingKeysDestroyed: 0 };
  }

  /** Off while the pass at start-up runs: the start-up reconciliation has just been made. */
  private reconcileAfterPass = true;

  /**
   * The pass at start-up (rotations and import expiries that fell due while the service was
   * down), right after the start-up reconciliation: without a second one, which with 100,000
   * keys read every key and listed the token again for nothing.
   */
  async sweepAfterReconciliation(): Promise<MaterialSweepResult> {
    this.reconcileAfterPass = false;
    try {
      return await this.sweep();
    } finally {
      this.reconcileAfterPass = true;
    }
  }

  protected async sweepOnce(): Promise<MaterialSweepResult> {
    const result = this.nothing();
    for (const key of await this.services.store.listKeys()) {
      const now = this.services.clock.now();
      try {
        if (rotationDue(key, now)) await this.rotate(key, now, result);
        if (key.origin === 'EXTERNAL') {
          await this.expireMaterial(key, now, result);
          await this.expireWrappingKeys(key, now, result);
        }
      } catch (err) {
        // The lock is gone (the store stepped this process down): the pass stops here.
        if (err instanceof BackgroundLockLostError) throw err;
        this.services.log.error({ keyId: key.keyId, err: (err as Error).message }, 'key material sweep failed for a key');
      }
    }
    // Leftovers of failed destroys and of creations whose process died (several processes on one store).
    // A token that cannot destroy now (what left them) must not stop the service starting: the next sweep tries again.
    if (this.intentLeaseMs !== undefined && this.reconcileAfterPass) {
      await reconcile(this.services, periodicReconcileOptions(this.services, this.intentLeaseMs)).catch((err: unknown) => {
        if (err instanceof BackgroundLockLostError) throw err;
        this.services.log.error({ err: (err as Error).message }, 'reconciliation failed; the next sweep tries again');
      });
      await reconcileBackends(this.services, periodicReconcileOptions(this.services, this.intentLeaseMs));
    }
    return result;
  }

  private async rotate(key: KeyRecord, now: number, result: MaterialSweepResult): Promise<void> {
    const eventID = randomUUID();
    // The rotation commits with its record in the audit outbox: the new material is the one the transaction made current.
    const provisional = (written: readonly KeyRecord[]) => {
      const rotated = written.find((k) => k.keyId === key.keyId && k.region === key.region);
      const previous = key.materials.find((m) => m.version === key.currentVersion);
      const current = rotated?.materials.find((m) => m.version === rotated.currentVersion);
      const details = { rotationType: 'AUTOMATIC', keyOrigin: key.origin, previousKeyMaterialId: previous?.materialId ?? '', currentKeyMaterialId: current?.materialId ?? '' } as const;
      return { ...keyRotatedEvent(key, now, details), eventID };
    };
    const rotation = await changeCarryingRecord(this.services, eventID, provisional, () => rotateKey(this.services, key, 'AUTOMATIC', (current) => (rotationDue(current, now) ? undefined : false)));
    if (!rotation) return;
    result.rotated.push(key.keyId);
    this.services.log.info({ keyId: key.keyId, version: rotation.current.version }, 'key material rotated automatically');
    const details = { rotationType: 'AUTOMATIC', keyOrigin: key.origin, previousKeyMaterialId: rotation.previous.materialId, currentKeyMaterialId: rotation.current.materialId } as const;
    await recordChange(this.services, this.audit, { ...keyRotatedEvent(rotation.key, this.services.clock.now(), details), eventID }, { keyId: key.keyId, message: MATERIAL_EVENT_UNRECORDED });
  }

  /** Store first (the material is no longer usable), then the token object is destroyed. */
  private async expireMaterial(key: KeyRecord, now: number, result: MaterialSweepResult): Promise<void> {
    const due = key.materials.filter((m) => m.imported?.importState === 'IMPORTED' && m.imported.validTo !== undefined && m.imported.validTo <= now);
    for (const candidate of due) {
      const eventID = randomUUID();
      const provisional = () => ({ ...importedMaterialExpiredEvent(key, now, candidate.materialId), eventID });
      const expired = await changeCarryingRecord(this.services, eventID, provisional, () => removeFromToken(this.services, key.keyId, async (tx) => {
        const current = await tx.getKey(key);
        const m = current?.materials.find((x) => x.version === candidate.version);
        if (!current || !m?.imported || m.imported.importState !== 'IMPORTED' || m.imported.validTo === undefined || m.imported.validTo > now) return { value: undefined };
        tx.putKey(withoutImportedMaterial(current, m));
        return { value: m, materials: [materialRefOf(key.keyId, m)] };
      }));
      if (!expired) continue;
      result.expired.push(`${key.keyId}:v${expired.version}`);
      this.services.log.info({ keyId: key.keyId, version: expired.version }, 'imported key material expired and was deleted');
      await recordChange(this.services, this.audit, { ...importedMaterialExpiredEvent(key, this.services.clock.now(), expired.materialId), eventID }, { keyId: key.keyId, message: MATERIAL_EVENT_UNRECORDED });
    }
  }

  private async expireWrappingKeys(key: KeyRecord, now: number, result: MaterialSweepResult): Promise<void> {
    if (!key.importParameters?.some((p) => p.validTo <= now)) return;
    const gone = await removeFromToken(this.services, key.keyId, async (tx) => {
      const current = await tx.getKey(key);
      if (!current?.importParameters) return { value: 0 };
      const expired = current.importParameters.filter((p) => p.validTo <= now);
      if (expired.length > 0) tx.putKey({ ...current, importParameters: current.importParameters.filter((p) => p.validTo > now) });
      return { value: expired.length, wrappingKeys: expired.map((p) => ({ keyId: key.keyId, wrappingId: p.wrappingId })) };
    });
    result.wrappingKeysDestroyed += gone;
  }
}

function rotationDue(key: KeyRecord, now: number): boolean {
  const rotation = rotationOf(key);
  // A multi-Region key rotates through its primary; the new version is shared by every region.
  return key.keyState === 'Enabled' && key.origin === 'AWS_KMS' && !isReplica(key) && rotation.enabled && rotation.nextRotationAt !== undefined && rotation.nextRotationAt <= now;
}
