import { KmsError } from '../errors';
import type { KeyMaterialRecord, KeyRecord } from '../store/records';
import type { OperationHandler } from './context';
import { checkImportTarget } from './shared/import-checks';
import { materialStateAfterImportChange, pendingImportOf } from './shared/import-state';
import { materialRefOf, mutateKey, removeFromToken } from './shared/key-mutation';
import { invalidState, loadKeyFor } from './shared/key-resolution';

/**
 * Store first (the key is PendingImport from that moment), then the objects of exactly that
 * material's creation are destroyed (a re-import racing this one makes objects of its own);
 * a crash in between leaves objects reconciliation destroys. Material pending rotation was
 * never used, so it is forgotten entirely.
 */
export const deleteImportedKeyMaterial: OperationHandler<'DeleteImportedKeyMaterial'> = async (input, ctx, services) => {
  const found = await loadKeyFor(services, ctx, input.KeyId, { operation: 'DeleteImportedKeyMaterial', allowedStates: 'any' });
  checkImportTarget(found);
  const pick = (key: KeyRecord): KeyMaterialRecord => {
    const m = input.KeyMaterialId !== undefined ? key.materials.find((x) => x.materialId === input.KeyMaterialId) : key.materials.find((x) => x.version === key.currentVersion);
    if (!m && input.KeyMaterialId !== undefined) throw new KmsError('NotFoundException', `Key material ${input.KeyMaterialId} does not exist for key ${key.arn}.`);
    if (!m || m.imported?.importState !== 'IMPORTED') throw invalidState({ ...key, keyState: 'PendingImport' });
    return m;
  };
  pick(found);
  const deleted = await mutateKey(services, found.keyId, () =>
    removeFromToken(services, found.keyId, async (tx) => {
      const current = await tx.getKey(found);
      if (!current) throw new KmsError('NotFoundException', `Key '${found.arn}' does not exist`);
      checkImportTarget(current);
      const m = pick(current);
      const materials =
        m.version > current.currentVersion
          ? current.materials.filter((x) => x !== m)
          : current.materials.map((x) => (x === m ? pendingImportOf(m) : x));
      tx.putKey(materialStateAfterImportChange(current, materials));
      return { value: m, materials: [materialRefOf(found.keyId, m)] };
    }),
  );
  return { KeyId: found.arn, KeyMaterialId: deleted.materialId };
};
