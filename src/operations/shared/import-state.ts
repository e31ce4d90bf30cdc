import type { KeyMaterialRecord, KeyRecord } from '../../store/records';

/**
 * The key state that follows from its materials after an import, a deletion or an expiry:
 * a key is usable (Enabled) only when its current material and every earlier one are in the
 * token; otherwise it is PendingImport. PendingDeletion keys keep their state; a Disabled key
 * stays Disabled while usable.
 */
export function materialStateAfterImportChange(key: KeyRecord, materials: readonly KeyMaterialRecord[]): KeyRecord {
  const complete = materials.some((m) => m.version === key.currentVersion) && materials.filter((m) => m.version <= key.currentVersion).every((m) => m.imported?.importState === 'IMPORTED');
  let keyState = key.keyState;
  if (keyState !== 'PendingDeletion') {
    if (!complete) keyState = 'PendingImport';
    else if (keyState === 'PendingImport') keyState = 'Enabled';
  }
  return { ...key, materials, keyState };
}
