import { constants, createCipheriv, createPublicKey, publicEncrypt, randomBytes } from 'node:crypto';
import type { AlgorithmSpec } from '@aws-sdk/client-kms';

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
