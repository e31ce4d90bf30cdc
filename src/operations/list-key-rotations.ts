import { KmsError } from '../errors';
import type { RotationsListEntry } from '../model/generated/types';
import type { KeyMaterialRecord, KeyRecord } from '../store/records';
import type { OperationHandler } from './context';
import { loadKeyFor } from './shared/key-resolution';
import { listOrder, paginate } from './shared/pagination';
import { isRotatable } from './shared/rotation';

const BY_VERSION = listOrder(['number'], (m: KeyMaterialRecord) => [m.version]);

/**
 * The key's materials, oldest first. ROTATIONS_ONLY (the default) lists the materials that
 * rotations made current; ALL_KEY_MATERIAL adds the first material and imported material
 * pending rotation. Import fields appear for EXTERNAL keys only, as on AWS.
 */
export const listKeyRotations: OperationHandler<'ListKeyRotations'> = async (input, ctx, services) => {
  const key = await loadKeyFor(services, ctx, input.KeyId, { operation: 'ListKeyRotations', states: 'any' });
  if (!isRotatable(key)) throw new KmsError('UnsupportedOperationException', '');
  const all = input.IncludeKeyMaterial === 'ALL_KEY_MATERIAL';
  const materials = key.materials.filter((m) => all || m.rotatedAt !== undefined);
  const { page, NextMarker, Truncated } = paginate('ListKeyRotations', materials, BY_VERSION, input);
  return { Rotations: page.map((m) => entryOf(key, m)), ...(NextMarker ? { NextMarker } : {}), Truncated };
};

function entryOf(key: KeyRecord, m: KeyMaterialRecord): RotationsListEntry {
  const entry: RotationsListEntry = { KeyId: key.keyId, KeyMaterialId: m.materialId };
  if (m.imported) {
    if (m.imported.description !== undefined) entry.KeyMaterialDescription = m.imported.description;
    entry.ImportState = m.imported.importState;
  }
  entry.KeyMaterialState = m.version === key.currentVersion ? 'CURRENT' : m.version > key.currentVersion ? 'PENDING_ROTATION' : 'NON_CURRENT';
  if (m.imported) {
    entry.ExpirationModel = m.imported.expirationModel;
    if (m.imported.validTo !== undefined) entry.ValidTo = new Date(m.imported.validTo);
  }
  if (m.rotatedAt !== undefined) {
    entry.RotationDate = new Date(m.rotatedAt);
    entry.RotationType = m.rotationType;
  }
  return entry;
}
