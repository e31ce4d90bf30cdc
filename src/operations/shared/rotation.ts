import { randomBytes } from 'node:crypto';
import { KmsError } from '../../errors';
import type { KeyMaterialRecord, KeyRecord, RotationRecord } from '../../store/records';
import type { Services } from '../context';

export const DAY_MS = 24 * 60 * 60 * 1000;
export const DEFAULT_ROTATION_PERIOD_DAYS = 365;
/** AWS allows this many on-demand rotations per key. */
export const ON_DEMAND_ROTATION_LIMIT = 25;

/** Automatic and on-demand rotation exist for symmetric encryption keys only, as on AWS. */
export function isRotatable(key: KeyRecord): boolean {
  // Keys in custom key stores cannot be rotated, automatically or on demand, as on AWS.
  return key.keySpec === 'SYMMETRIC_DEFAULT' && key.customKeyStoreId === undefined;
}

export function rotationOf(key: KeyRecord): RotationRecord {
  return key.rotation ?? { enabled: false, periodInDays: DEFAULT_ROTATION_PERIOD_DAYS, onDemandCount: 0 };
}

/** The imported material waiting for RotateKeyOnDemand (versions above the current one). */
export function pendingRotationMaterial(key: KeyRecord): KeyMaterialRecord | undefined {
  return key.materials.find((m) => m.version > key.currentVersion);
}

export function nextVersion(key: KeyRecord): number {
  return key.materials.reduce((max, m) => Math.max(max, m.version), 0) + 1;
}

/**
 * Makes new material current. AWS_KMS keys: a new AES-256 object is generated in the token
 * (token first: a crash before the store write leaves an orphan that start-up reconciliation
 * destroys), then one store transaction appends the version. EXTERNAL keys: the imported
 * material pending rotation becomes current (no token work).
 * `stillWanted` re-checks the freshest record inside the transaction (e.g. still due).
 * Returns the updated record, or undefined when `stillWanted` declined.
 */
export async function rotateKey(
  services: Services,
  key: KeyRecord,
  type: 'AUTOMATIC' | 'ON_DEMAND',
  stillWanted: (current: KeyRecord) => void | false,
): Promise<KeyRecord | undefined> {
  const now = services.clock.now();
  const advance = (current: KeyRecord, material: KeyMaterialRecord, materials: readonly KeyMaterialRecord[]): KeyRecord => {
    const rotation = rotationOf(current);
    const nextRotation: RotationRecord =
      type === 'AUTOMATIC'
        ? { ...rotation, nextRotationAt: now + rotation.periodInDays * DAY_MS }
        : { ...rotation, onDemandCount: rotation.onDemandCount + 1 };
    return {
      ...current,
      materials: materials.map((m) => (m.version === material.version ? { ...m, rotationType: type, rotatedAt: now } : m)),
      currentVersion: material.version,
      rotation: nextRotation,
    };
  };

  if (key.origin === 'EXTERNAL') {
    return services.store.transact(async (tx) => {
      const current = await tx.getKey(key);
      if (!current) throw new KmsError('NotFoundException', `Key '${key.arn}' does not exist`);
      if (stillWanted(current) === false) return undefined;
      const pending = pendingRotationMaterial(current);
      if (!pending || pending.imported?.importState !== 'IMPORTED') {
        throw new KmsError('KMSInvalidStateException', `No available key material pending rotation for the key: ${current.arn}.`);
      }
      const next = advance(current, pending, current.materials);
      tx.putKey(next);
      return next;
    });
  }

  const version = nextVersion(key);
  const ref = { keyId: key.keyId, version };
  await services.custody.generateKey(ref, key.keySpec, key.keyUsage);
  try {
    const updated = await services.store.transact(async (tx) => {
      const current = await tx.getKey(key);
      if (!current) throw new KmsError('NotFoundException', `Key '${key.arn}' does not exist`);
      if (stillWanted(current) === false) return undefined;
      // A concurrent rotation took this version number: let the caller retry with a fresh one.
      if (current.materials.some((m) => m.version >= version)) {
        throw new KmsError('ConflictException', `${current.arn} is being rotated by another request. Try again.`);
      }
      const material: KeyMaterialRecord = { version, materialId: randomBytes(32).toString('hex'), createdAt: now };
      const next = advance(current, material, [...current.materials, material]);
      tx.putKey(next);
      return next;
    });
    if (!updated) await services.custody.destroy(ref);
    return updated;
  } catch (err) {
    await services.custody.destroy(ref).catch((destroyErr: unknown) =>
      services.log.error({ keyId: key.keyId, version, err: destroyErr }, 'could not destroy material of a rotation that was not stored'),
    );
    throw err;
  }
}
