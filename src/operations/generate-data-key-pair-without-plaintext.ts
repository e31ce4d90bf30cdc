import type { OperationHandler } from './context';
import { generateDataKeyPair } from './shared/data-key-pair';

export const generateDataKeyPairWithoutPlaintext: OperationHandler<'GenerateDataKeyPairWithoutPlaintext'> = async (input, ctx, services) => {
  const pair = await generateDataKeyPair(services, ctx, 'GenerateDataKeyPairWithoutPlaintext', input);
  return {
    PrivateKeyCiphertextBlob: pair.blob,
    PublicKey: pair.publicKey,
    KeyId: pair.keyArn,
    KeyPairSpec: input.KeyPairSpec,
    KeyMaterialId: pair.keyMaterialId,
  };
};
