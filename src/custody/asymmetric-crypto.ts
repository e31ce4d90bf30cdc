import { constants as cryptoConstants, createPublicKey, publicEncrypt } from 'node:crypto';
import * as pkcs11js from 'pkcs11js';
import { KmsError } from '../errors';
import type { KeySpec } from '../model/generated/types';
import { ecdhMechanism, ecdhResultTemplate, familyOf, oaepMechanism, pairTemplates } from './key-templates';
import { type MaterialRef, requiredObject } from './material-objects';
import { ckrName } from './pkcs11-errors';
import { type PublicKeyMaterial, spkiOf } from './public-keys';
import { oaepDecode, type OaepHash } from './rsa-oaep';
import { isIntegrityFailure } from './sign-verify';
import { checkSecretLength, invalidCiphertext } from './symmetric-crypto';
import type { Session, Token } from './token';

/** Public keys, RSA-OAEP, ECDH and data key pairs (signatures: sign-verify.ts). */
export class AsymmetricCrypto {
  constructor(private readonly token: Token) {}

  /** The DER SubjectPublicKeyInfo of an asymmetric key, read from its public object. */
  async publicKey(ref: MaterialRef, spec: KeySpec): Promise<Buffer> {
    return this.token.run('read public key', (session) => spkiOf(spec, this.publicMaterial(session, ref, spec)));
  }

  /**
   * RSA-OAEP decryption with the private key in the token: the token's own OAEP where it
   * offers the hash, else a raw RSA operation in the token and constant-time OAEP decoding
   * here. Every failure is the same InvalidCiphertextException.
   */
  async rsaDecrypt(ref: MaterialRef, hash: OaepHash, ciphertext: Buffer): Promise<Buffer> {
    const inToken = this.token.profile.quirks.oaepHashesInToken?.includes(hash) ?? true;
    return this.token.run('RSA decrypt', async (session) => {
      const key = requiredObject(this.token, session, ref, pkcs11js.CKO_PRIVATE_KEY);
      const mechanism: pkcs11js.Mechanism = inToken ? oaepMechanism(hash) : { mechanism: pkcs11js.CKM_RSA_X_509 };
      this.token.pkcs11.C_DecryptInit(session, mechanism, key);
      let output: Buffer;
      try {
        output = await this.token.pkcs11.C_DecryptAsync(session, ciphertext, Buffer.alloc(ciphertext.length));
      } catch (err) {
        if (RSA_DECRYPT_FAILURES.has(ckrName(err) ?? '') || isIntegrityFailure(this.token, ckrName(err))) throw invalidCiphertext();
        throw err;
      }
      if (inToken) return output;
      // CKM_RSA_X_509 may drop leading zero bytes; OAEP decoding needs the full block.
      const block = Buffer.concat([Buffer.alloc(ciphertext.length - output.length), output]);
      const message = oaepDecode(block, hash);
      block.fill(0);
      output.fill(0);
      if (!message) throw invalidCiphertext();
      return message;
    });
  }

  /** RSA-OAEP encryption: a public-key operation, done with the public key read from the token. */
  async rsaEncrypt(ref: MaterialRef, spec: KeySpec, hash: OaepHash, plaintext: Buffer): Promise<Buffer> {
    const spki = await this.publicKey(ref, spec);
    return publicEncrypt(
      { key: createPublicKey({ key: spki, format: 'der', type: 'spki' }), padding: cryptoConstants.RSA_PKCS1_OAEP_PADDING, oaepHash: hash },
      plaintext,
    );
  }

  /** ECDH in the token with the peer's uncompressed point; returns the raw shared secret. */
  async deriveSharedSecret(ref: MaterialRef, spec: KeySpec, peerPoint: Buffer): Promise<Buffer> {
    return this.token.run('derive shared secret', async (session) => {
      const key = requiredObject(this.token, session, ref, pkcs11js.CKO_PRIVATE_KEY);
      const secret = await this.token.pkcs11.C_DeriveKeyAsync(session, ecdhMechanism(peerPoint), key, ecdhResultTemplate(spec));
      try {
        const [attr] = this.token.pkcs11.C_GetAttributeValue(session, secret, [{ type: pkcs11js.CKA_VALUE }]);
        return Buffer.from(attr.value as Buffer);
      } finally {
        this.token.pkcs11.C_DestroyObject(session, secret);
      }
    });
  }

  /**
   * A data key pair generated in the token; its private key is wrapped there (as PKCS#8,
   * RFC 5649) under a symmetric master key and both halves are destroyed. Returns the
   * public key and the wrapped private key.
   */
  async generateWrappedKeyPair(wrapWith: MaterialRef, spec: KeySpec): Promise<{ publicKey: Buffer; wrapped: Buffer }> {
    this.checkDataKeyPair(spec);
    const t = pairTemplates(spec, 'DATA_KEY_PAIR', undefined, false);
    return this.token.run('generate data key pair', async (session) => {
      const wrappingKey = requiredObject(this.token, session, wrapWith, pkcs11js.CKO_SECRET_KEY);
      const pair = await this.token.pkcs11.C_GenerateKeyPairAsync(session, { mechanism: t.mechanism }, t.publicTemplate, t.privateTemplate);
      try {
        const publicKey = spkiOf(spec, this.publicMaterialOf(session, pair.publicKey, spec));
        let wrapped: Buffer;
        try {
          wrapped = await this.token.pkcs11.C_WrapKeyAsync(session, { mechanism: this.token.rfc5649 }, wrappingKey, pair.privateKey, Buffer.alloc(8192));
        } catch (err) {
          // A token whose profile does not name the spec in unwrappablePrivateKeySpecs.
          if (ckrName(err) === 'CKR_KEY_NOT_WRAPPABLE') {
            throw notWrappable(spec);
          }
          throw err;
        }
        return { publicKey, wrapped };
      } finally {
        this.token.pkcs11.C_DestroyObject(session, pair.privateKey);
        this.token.pkcs11.C_DestroyObject(session, pair.publicKey);
      }
    });
  }

  /** Refuses, before anything is generated, a data key pair this token cannot wrap or open. */
  checkDataKeyPair(spec: KeySpec): void {
    if (this.token.profile.quirks.unwrappablePrivateKeySpecs?.includes(spec)) throw notWrappable(spec);
    // The wrapped private key is unwrapped as one generic secret on Decrypt: refuse a pair
    // whose PKCS#8 form the token could not hold.
    if (spec.startsWith('RSA_')) checkSecretLength(this.token, Number(spec.slice(4)) / 2, `${spec} data key pairs`);
  }

  private publicMaterial(session: Session, ref: MaterialRef, spec: KeySpec): PublicKeyMaterial {
    return this.publicMaterialOf(session, requiredObject(this.token, session, ref, pkcs11js.CKO_PUBLIC_KEY), spec);
  }

  private publicMaterialOf(session: Session, handle: Buffer, spec: KeySpec): PublicKeyMaterial {
    const family = familyOf(spec);
    if (family === 'rsa') {
      const [n, e] = this.token.pkcs11.C_GetAttributeValue(session, handle, [{ type: pkcs11js.CKA_MODULUS }, { type: pkcs11js.CKA_PUBLIC_EXPONENT }]);
      return { family, modulus: n.value as Buffer, exponent: e.value as Buffer };
    }
    const [point] = this.token.pkcs11.C_GetAttributeValue(session, handle, [{ type: pkcs11js.CKA_EC_POINT }]);
    return { family: family === 'edwards' ? 'edwards' : 'ec', point: point.value as Buffer };
  }
}

const RSA_DECRYPT_FAILURES = new Set(['CKR_ENCRYPTED_DATA_INVALID', 'CKR_ENCRYPTED_DATA_LEN_RANGE', 'CKR_DATA_INVALID', 'CKR_DATA_LEN_RANGE', 'CKR_GENERAL_ERROR']);

function notWrappable(spec: KeySpec): KmsError {
  return new KmsError('UnsupportedOperationException', `The token cannot wrap ${spec} private keys, so it cannot make ${spec} data key pairs.`);
}
