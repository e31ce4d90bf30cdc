import { randomBytes } from 'node:crypto';
import { KmsError } from '../../errors';
import type { KeyMaterialRecord, KeyRecord, RotationRecord } from '../../store/records';
import type { KeyLocator } from '../../store/metadata-store';
import type { Services } from '../context';
import { createInToken, mutateKey } from './key-mutation';

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

/** What one rotation changed: the key as written, and the material it replaced by which. */
export interface Rotation {
  key: KeyRecord;
  previous: KeyMaterialRecord;
  current: KeyMaterialRecord;
}

/** AWS refuses on-demand rotation this long before an automatic one (ConflictException). */
export const AUTOMATIC_ROTATION_LEAD_MS = 20 * 60 * 1000;

/**
 * An automatic rotation is in progress or begins within 20 minutes: the model's
 * ConflictException ("an automatic rotation of this key is currently in progress or scheduled
 * to begin within the next 20 minutes"). Here a rotation whose date has passed is in progress
 * until the next sweep makes it.
 */
export function automaticRotationImminent(key: KeyRecord, now: number): boolean {
  const rotation = rotationOf(key);
  return rotation.enabled && rotation.nextRotationAt !== undefined && rotation.nextRotationAt - now <= AUTOMATIC_ROTATION_LEAD_MS;
}

/**
 * Makes new material current. AWS_KMS keys: a new object is generated in the token and one
 * store transaction appends the version (the creation protocol of key-mutation.ts: a request
 * that loses a race destroys only its own object, by creation id). EXTERNAL keys: the
 * imported material pending rotation becomes current (no token work).
 * `stillWanted` re-checks the freshest record inside the transaction (e.g. still due).
 * Returns what changed, or undefined when `stillWanted` declined.
 */
export async function rotateKey(
  services: Services,
  key: KeyRecord,
  type: 'AUTOMATIC' | 'ON_DEMAND',
  stillWanted: (current: KeyRecord) => void | false,
): Promise<Rotation | undefined> {
  const now = services.clock.now();
  const advance = (current: KeyRecord, material: KeyMaterialRecord, materials: readonly KeyMaterialRecord[]): Rotation => {
    const rotation = rotationOf(current);
    const nextRotation: RotationRecord =
      type === 'AUTOMATIC'
        ? { ...rotation, nextRotationAt: now + rotation.periodInDays * DAY_MS }
        : { ...rotation, onDemandCount: rotation.onDemandCount + 1 };
    const rotated = { ...material, rotationType: type, rotatedAt: now };
    return {
      key: { ...current, materials: materials.map((m) => (m.version === material.version ? rotated : m)), currentVersion: material.version, rotation: nextRotation },
      previous: current.materials.find((m) => m.version === current.currentVersion)!,
      current: rotated,
    };
  };
  const freshKey = async (tx: { getKey(key: KeyLocator): Promise<KeyRecord | undefined> }) => {
    const current = await tx.getKey(key);
    if (!current) throw new KmsError('NotFoundException', `Key '${key.arn}' does not exist`);
    return current;
  };

  if (key.origin === 'EXTERNAL') {
    return mutateKey(services, key.keyId, () =>
      services.store.transact(async (tx) => {
        const current = await freshKey(tx);
        if (stillWanted(current) === false) return undefined;
        const pending = pendingRotationMaterial(current);
        if (!pending || pending.imported?.importState !== 'IMPORTED') {
          throw new KmsError('KMSInvalidStateException', `No available key material pending rotation for the key: ${current.arn}.`);
        }
        const next = advance(current, pending, current.materials);
        tx.putKey(next.key);
        return next;
      }),
    );
  }

  return mutateKey(services, key.keyId, async () => {
    const base = await freshKey(services.store);
    if (stillWanted(base) === false) return undefined;
    const version = nextVersion(base);
    const materialId = randomBytes(32).toString('hex');
    return createInToken(services, {
      keyId: key.keyId,
      purpose: 'material',
      make: (creationId) => services.custody.generateKey({ keyId: key.keyId, version, creationId }, base.keySpec, base.keyUsage),
      commit: async (tx, _made, creationId) => {
        const current = await freshKey(tx);
        if (stillWanted(current) === false) return { value: undefined, keep: false };
        // A concurrent rotation took this version number: mutateKey retries with a fresh one.
        if (current.materials.some((m) => m.version >= version)) {
          throw new KmsError('ConflictException', `${current.arn} is being rotated by another request. Try again.`);
        }
        const material: KeyMaterialRecord = { version, materialId, createdAt: now, creationId };
        const next = advance(current, material, [...current.materials, material]);
        tx.putKey(next.key);
        return { value: next, keep: true };
      },
    });
  });
}
