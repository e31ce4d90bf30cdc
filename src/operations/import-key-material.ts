import type { OperationHandler } from './context';
import { importKeyMaterial as importMaterial } from './shared/import-material';
import { loadKeyFor } from './shared/key-resolution';

export const importKeyMaterial: OperationHandler<'ImportKeyMaterial'> = async (input, ctx, services) => {
  const key = await loadKeyFor(services, ctx, input.KeyId, {
    operation: 'ImportKeyMaterial',
    states: 'any',
    conditions: {
      // AWS's condition values: the expiration model in effect (the default when omitted), ValidTo in epoch seconds.
      expirationModel: input.ExpirationModel ?? 'KEY_MATERIAL_EXPIRES',
      validTo: input.ValidTo === undefined ? undefined : new Date(input.ValidTo).getTime() / 1000,
    },
  });
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
