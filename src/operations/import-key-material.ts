import type { OperationHandler } from './context';
import { importKeyMaterial as importMaterial } from './shared/import-material';
import { loadKeyFor } from './shared/key-resolution';

export const importKeyMaterial: OperationHandler<'ImportKeyMaterial'> = async (input, ctx, services) => {
  const key = await loadKeyFor(services, ctx, input.KeyId, {
    operation: 'ImportKeyMaterial',
    states: 'any',
    conditions: {
      // kms:ExpirationModel is the parameter as sent, absent when omitted: the KMS developer guide
      // allows ImportKeyMaterial with {"Null": {"kms:ExpirationModel": true}} "only when the
      // request does not have an ExpirationModel parameter". kms:ValidTo in epoch seconds.
      expirationModel: input.ExpirationModel,
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
