import * as pkcs11js from 'pkcs11js';
import { KmsError } from '../errors';
import { ckrName } from './pkcs11-errors';
import type { Session, Token } from './token';

export const SECRET_SEALING_LABEL = 'p11kms-keystore:secrets:v1';

const IV_BYTES = 12;
const TAG_BYTES = 16;

/**
 * Seals the few secrets p11kms must keep to act for a user later: a custom key store's
 * backend PIN (KeyStorePassword) and its XKS proxy SigV4 secret. AES-256-GCM inside the
 * main token under one AES key made there at first use (sensitive, never extractable),
 * bound to the record the secret belongs to through the AAD. The store keeps only the
 * sealed form; the label does not match the master-key pattern, so start-up reconciliation
 * leaves the key alone.
 */
export class SecretSealer {
  private constructor(private readonly token: Token) {}

  /** Makes the sealing key at start-up, before any request could race to create it twice. */
  static async open(token: Token): Promise<SecretSealer> {
    const sealer = new SecretSealer(token);
    await token.run('open secret sealing key', (session) => sealer.key(session));
    return sealer;
  }

  async seal(boundTo: string, secret: string): Promise<string> {
    return this.token.run('seal secret', async (session) => {
      const key = this.key(session);
      const iv = this.token.pkcs11.C_GenerateRandom(session, Buffer.alloc(IV_BYTES));
      const plaintext = Buffer.from(secret, 'utf8');
      try {
        this.token.pkcs11.C_EncryptInit(session, gcm(iv, boundTo), key);
        const sealed = await this.token.pkcs11.C_EncryptAsync(session, plaintext, Buffer.alloc(plaintext.length + TAG_BYTES));
        return Buffer.concat([iv, sealed]).toString('base64');
      } finally {
        plaintext.fill(0);
      }
    });
  }

  async open(boundTo: string, sealed: string): Promise<string> {
    const bytes = Buffer.from(sealed, 'base64');
    return this.token.run('open secret', async (session) => {
      const key = this.key(session);
      this.token.pkcs11.C_DecryptInit(session, gcm(bytes.subarray(0, IV_BYTES), boundTo), key);
      try {
        const plaintext = await this.token.pkcs11.C_DecryptAsync(session, bytes.subarray(IV_BYTES), Buffer.alloc(bytes.length));
        const secret = plaintext.toString('utf8');
        plaintext.fill(0);
        return secret;
      } catch (err) {
        throw new KmsError('KMSInternalException', 'A stored custom key store secret could not be opened.', { internalDetail: `open secret: ${ckrName(err) ?? String(err)}` });
      }
    });
  }

  private key(session: Session): Buffer {
    const existing = this.token.findObject(session, SECRET_SEALING_LABEL, pkcs11js.CKO_SECRET_KEY);
    if (existing) return existing;
    return this.token.pkcs11.C_GenerateKey(session, { mechanism: pkcs11js.CKM_AES_KEY_GEN }, [
      { type: pkcs11js.CKA_CLASS, value: pkcs11js.CKO_SECRET_KEY },
      { type: pkcs11js.CKA_KEY_TYPE, value: pkcs11js.CKK_AES },
      { type: pkcs11js.CKA_VALUE_LEN, value: 32 },
      { type: pkcs11js.CKA_TOKEN, value: true },
      { type: pkcs11js.CKA_PRIVATE, value: true },
      { type: pkcs11js.CKA_SENSITIVE, value: true },
      { type: pkcs11js.CKA_EXTRACTABLE, value: false },
      { type: pkcs11js.CKA_MODIFIABLE, value: false },
      { type: pkcs11js.CKA_ENCRYPT, value: true },
      { type: pkcs11js.CKA_DECRYPT, value: true },
      { type: pkcs11js.CKA_WRAP, value: false },
      { type: pkcs11js.CKA_UNWRAP, value: false },
      { type: pkcs11js.CKA_LABEL, value: SECRET_SEALING_LABEL },
      { type: pkcs11js.CKA_ID, value: Buffer.from(SECRET_SEALING_LABEL) },
    ]);
  }
}

function gcm(iv: Buffer, boundTo: string): pkcs11js.Mechanism {
  return {
    mechanism: pkcs11js.CKM_AES_GCM,
    parameter: { type: pkcs11js.CK_PARAMS_GCM, iv, aad: Buffer.from(`p11kms/keystore-secret/v1\0${boundTo}`, 'utf8'), ivBits: IV_BYTES * 8, tagBits: TAG_BYTES * 8 } as pkcs11js.GcmParams,
  };
}
