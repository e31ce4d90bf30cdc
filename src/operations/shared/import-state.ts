import type { ExpirationModelType } from '../../model/generated/types';
import type { KeyMaterialRecord, KeyRecord } from '../../store/records';

/**
 * The key state that follows from its materials after an import, a deletion or an expiry:
 * a key is usable only when its current material and every earlier one are in the token;
 * otherwise it is PendingImport. PendingDeletion keys keep their state; a Disabled key stays
 * Disabled while usable, and a key that was Disabled when its material went returns to
 * Disabled (not Enabled) when the material is imported again.
 */
export function materialStateAfterImportChange(key: KeyRecord, materials: readonly KeyMaterialRecord[]): KeyRecord {
  const complete = materials.some((m) => m.version === key.currentVersion) && materials.filter((m) => m.version <= key.currentVersion).every((m) => m.imported?.importState === 'IMPORTED');
  let keyState = key.keyState;
  let disabledBefore = key.disabledBeforePendingImport === true;
  if (keyState !== 'PendingDeletion') {
    if (!complete) {
      if (keyState === 'Disabled') disabledBefore = true;
      keyState = 'PendingImport';
    } else if (keyState === 'PendingImport') {
      keyState = disabledBefore ? 'Disabled' : 'Enabled';
      disabledBefore = false;
    }
  }
  const { disabledBeforePendingImport: _previous, ...rest } = key;
  return { ...rest, materials, keyState, ...(disabledBefore ? { disabledBeforePendingImport: true } : {}) };
}

/**
 * The key after imported material `m` (one of its materials) is deleted or expires: both
 * DeleteImportedKeyMaterial and the material sweeper come here. Material pending rotation was
 * never permanently associated with the key, so it is forgotten entirely (other material may
 * be imported in its place, as on AWS); any other becomes PENDING_IMPORT, and so does the key.
 */
export function withoutImportedMaterial(key: KeyRecord, m: KeyMaterialRecord): KeyRecord {
  const materials = m.version > key.currentVersion ? key.materials.filter((x) => x.version !== m.version) : key.materials.map((x) => (x.version === m.version ? pendingImportOf(x) : x));
  return materialStateAfterImportChange(key, materials);
}

/**
 * DescribeKey's ExpirationModel and ValidTo: AWS reports the earliest time at which any imported
 * material permanently associated with the key (the current one and every earlier one)
 * expires, not only the current material's; nothing while the current material is not imported.
 */
export function importedExpiryOf(key: KeyRecord): { expirationModel?: ExpirationModelType; validTo?: number } {
  const current = key.materials.find((m) => m.version === key.currentVersion);
  if (current?.imported?.importState !== 'IMPORTED') return {};
  const dates = key.materials
    .filter((m) => m.version <= key.currentVersion && m.imported?.importState === 'IMPORTED' && m.imported.validTo !== undefined)
    .map((m) => m.imported!.validTo!);
  return dates.length === 0 ? { expirationModel: 'KEY_MATERIAL_DOES_NOT_EXPIRE' } : { expirationModel: 'KEY_MATERIAL_EXPIRES', validTo: Math.min(...dates) };
}

/** Imported material after a deletion or expiry: PENDING_IMPORT, and no longer naming a token object. */
function pendingImportOf(m: KeyMaterialRecord): KeyMaterialRecord {
  const { creationId: _destroyed, ...rest } = m;
  return { ...rest, imported: { ...m.imported!, importState: 'PENDING_IMPORT' } };
}
