import type { OperationHandler } from './context';
import { generateDataKeyPair as generate } from './shared/data-key-pair';

export const generateDataKeyPair: OperationHandler<'GenerateDataKeyPair'> = async (input, ctx, services) => {
  const pair = await generate(services, ctx, 'GenerateDataKeyPair', input);
  return {
    PrivateKeyCiphertextBlob: pair.blob,
    PrivateKeyPlaintext: pair.privateKey,
    PublicKey: pair.publicKey,
    KeyId: pair.keyArn,
    KeyPairSpec: input.KeyPairSpec,
    KeyMaterialId: pair.keyMaterialId,
  };
};
