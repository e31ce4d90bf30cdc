import { KmsError } from '../errors';
import type { KeyMaterialRecord, KeyRecord } from '../store/records';
import type { OperationHandler } from './context';
import { checkImportTarget } from './shared/import-checks';
import { withoutImportedMaterial } from './shared/import-state';
import { materialRefOf, mutateKey, removeFromToken } from './shared/key-mutation';
import { loadKeyFor } from './shared/key-resolution';

/**
 * Store first (the key is PendingImport from that moment), then the objects of exactly that
 * material's creation are destroyed (a re-import racing this one makes objects of its own);
 * a crash in between leaves objects reconciliation destroys (withoutImportedMaterial says what
 * the key becomes). As AWS's key-state table says, a key pending
 * deletion keeps its state, and deleting material that is not there (pending import) has no
 * effect.
 */
export const deleteImportedKeyMaterial: OperationHandler<'DeleteImportedKeyMaterial'> = async (input, ctx, services) => {
  const found = await loadKeyFor(services, ctx, input.KeyId, { operation: 'DeleteImportedKeyMaterial', states: 'any' });
  checkImportTarget(found, 'any');
  const pick = (key: KeyRecord): KeyMaterialRecord | undefined => {
    const m = input.KeyMaterialId !== undefined ? key.materials.find((x) => x.materialId === input.KeyMaterialId) : key.materials.find((x) => x.version === key.currentVersion);
    if (!m && input.KeyMaterialId !== undefined) throw new KmsError('NotFoundException', `Key material ${input.KeyMaterialId} does not exist for key ${key.arn}.`);
    return m;
  };
  const imported = (m: KeyMaterialRecord | undefined): m is KeyMaterialRecord => m?.imported?.importState === 'IMPORTED';
  const named = pick(found);
  const deleted = !imported(named)
    ? named
    : await mutateKey(services, found.keyId, () =>
        removeFromToken(services, found.keyId, async (tx) => {
          const current = await tx.getKey(found);
          if (!current) throw new KmsError('NotFoundException', `Key '${found.arn}' does not exist`);
          checkImportTarget(current, 'any');
          const m = pick(current);
          if (!imported(m)) return { value: m };
          tx.putKey(withoutImportedMaterial(current, m));
          return { value: m, materials: [materialRefOf(found.keyId, m)] };
        }),
      );
  return { KeyId: found.arn, ...(deleted ? { KeyMaterialId: deleted.materialId } : {}) };
};
