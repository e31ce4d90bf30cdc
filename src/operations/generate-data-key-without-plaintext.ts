import type { OperationHandler } from './context';
import { PayloadKind } from './shared/ciphertext';
import { stopIfDryRun } from './shared/checks';
import { custodyOf } from './shared/custom-key-stores';
import { loadDataKeyRequest } from './shared/data-key';
import { currentMaterial, materialIdOf, seal } from './shared/envelope';

export const generateDataKeyWithoutPlaintext: OperationHandler<'GenerateDataKeyWithoutPlaintext'> = async (input, ctx, services) => {
  const { key, length } = await loadDataKeyRequest(services, ctx, 'GenerateDataKeyWithoutPlaintext', input);
  const custody = custodyOf(services, key);
  custody.symmetric.checkSecretLength(length);
  stopIfDryRun(input.DryRun);
  // Generated and wrapped inside the token: the plaintext data key never exists here.
  const wrapped = await custody.symmetric.generateWrappedSecret(currentMaterial(key), length);
  const blob = await seal(services, { ctx, operation: 'GenerateDataKeyWithoutPlaintext' }, key, input.EncryptionContext, { kind: PayloadKind.WrappedSecret, wrapped, length }, 'continuing');
  return { CiphertextBlob: blob, KeyId: key.arn, KeyMaterialId: materialIdOf(key, key.currentVersion) };
};
