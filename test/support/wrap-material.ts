import { constants, createCipheriv, createPublicKey, publicEncrypt, randomBytes } from 'node:crypto';
import { type AlgorithmSpec, GetParametersForImportCommand, ImportKeyMaterialCommand, type KMSClient, type WrappingKeySpec } from '@aws-sdk/client-kms';

/** The client side of import, done with node:crypto only, as an AWS user would. */
export function wrapMaterial(publicKey: Uint8Array, algorithm: AlgorithmSpec, material: Buffer): Buffer {
  const key = createPublicKey({ key: Buffer.from(publicKey), format: 'der', type: 'spki' });
  const oaep = (hash: string, data: Buffer) => publicEncrypt({ key, padding: constants.RSA_PKCS1_OAEP_PADDING, oaepHash: hash }, data);
  switch (algorithm) {
    case 'RSAES_PKCS1_V1_5':
      return publicEncrypt({ key, padding: constants.RSA_PKCS1_PADDING }, material);
    case 'RSAES_OAEP_SHA_1':
      return oaep('sha1', material);
    case 'RSAES_OAEP_SHA_256':
      return oaep('sha256', material);
    default: {
      const aesKey = randomBytes(32);
      const kwp = createCipheriv('id-aes256-wrap-pad', aesKey, Buffer.from('A65959A6', 'hex'));
      return Buffer.concat([oaep(algorithm === 'RSA_AES_KEY_WRAP_SHA_1' ? 'sha1' : 'sha256', aesKey), kwp.update(material), kwp.final()]);
    }
  }
}

/** GetParametersForImport, then ImportKeyMaterial of `material` wrapped as above; non-expiring unless `extra` says otherwise. */
export async function importWrapped(
  kms: KMSClient,
  keyId: string,
  material: Buffer,
  { algorithm = 'RSA_AES_KEY_WRAP_SHA_1', spec = 'RSA_2048', extra = {} }: { algorithm?: AlgorithmSpec; spec?: WrappingKeySpec; extra?: Record<string, unknown> } = {},
) {
  const params = await kms.send(new GetParametersForImportCommand({ KeyId: keyId, WrappingAlgorithm: algorithm, WrappingKeySpec: spec }));
  return kms.send(
    new ImportKeyMaterialCommand({
      KeyId: keyId,
      ImportToken: params.ImportToken,
      EncryptedKeyMaterial: wrapMaterial(params.PublicKey!, algorithm, material),
      ExpirationModel: 'KEY_MATERIAL_DOES_NOT_EXPIRE',
      ...extra,
    }),
  );
}
