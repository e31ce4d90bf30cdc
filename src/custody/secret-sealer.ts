import * as pkcs11js from 'pkcs11js';
import { KmsError } from '../errors';
import { aesKeyTemplate, gcmMechanism } from './key-templates';
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
  /** The key is made at the first seal, once: concurrent first seals wait for one creation. */
  private ready: Promise<void> | undefined;

  constructor(private readonly token: Token) {}

  async seal(boundTo: string, secret: string): Promise<string> {
    this.ready ??= this.token.run('make secret sealing key', async (session) => void (await this.key(session))).catch((err: unknown) => {
      this.ready = undefined;
      throw err;
    });
    await this.ready;
    return this.token.run('seal secret', async (session) => {
      const key = await this.key(session);
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
      const key = await this.key(session);
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

  private async key(session: Session): Promise<Buffer> {
    const existing = this.token.lookup.findObject(session, SECRET_SEALING_LABEL, pkcs11js.CKO_SECRET_KEY);
    if (existing) return existing;
    return this.token.creatingOnLoop(() => this.token.pkcs11.C_GenerateKey(session, { mechanism: pkcs11js.CKM_AES_KEY_GEN }, aesKeyTemplate(SECRET_SEALING_LABEL, false)));
  }
}

function gcm(iv: Buffer, boundTo: string): pkcs11js.Mechanism {
  return gcmMechanism(iv, Buffer.from(`p11kms/keystore-secret/v1\0${boundTo}`, 'utf8'));
}
