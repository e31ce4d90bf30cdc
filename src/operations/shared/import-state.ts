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

/** Imported material after a deletion or expiry: PENDING_IMPORT, and no longer naming a token object. */
export function pendingImportOf(m: KeyMaterialRecord): KeyMaterialRecord {
  const { creationId: _destroyed, ...rest } = m;
  return { ...rest, imported: { ...m.imported!, importState: 'PENDING_IMPORT' } };
}
