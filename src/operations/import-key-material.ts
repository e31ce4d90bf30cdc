import type { OperationHandler } from './context';
import { importKeyMaterial as importMaterial } from './shared/import-material';
import { loadKeyFor } from './shared/key-resolution';

export const importKeyMaterial: OperationHandler<'ImportKeyMaterial'> = async (input, ctx, services) => {
  const key = await loadKeyFor(services, ctx, input.KeyId, { operation: 'ImportKeyMaterial', allowedStates: 'any' });
  const { key: updated, keyMaterialId } = await importMaterial(services, key, {
    importToken: input.ImportToken,
    encryptedKeyMaterial: input.EncryptedKeyMaterial,
    validTo: input.ValidTo,
    expirationModel: input.ExpirationModel,
    importType: input.ImportType,
    description: input.KeyMaterialDescription,
    keyMaterialId: input.KeyMaterialId,
  });
  return { KeyId: updated.arn, KeyMaterialId: keyMaterialId };
};
