import * as pkcs11js from 'pkcs11js';
import { KmsError } from '../errors';
import { IvSupply } from './iv-supply';
import { aesKeyTemplate, gcmMechanism } from './key-templates';
import { ckrName } from './pkcs11-errors';
import type { Session, Token } from './token';
import { ulongValue } from './token-objects';

/** Token label of an external key served by the XKS proxy listener. */
export const EXTERNAL_KEY_LABEL_PREFIX = 'p11kms-xks:';

const IV_BYTES = 12;
const TAG_BYTES = 16;

export interface ExternalKeyMetadata {
  keySpec: string;
  keyUsage: string[];
}

/**
 * The keys p11kms serves as an XKS proxy: AES-256 token objects labelled
 * `p11kms-xks:<externalKeyId>`, made only by an operator (`p11kms xks create-key`), never by the
 * API. AES-GCM runs in the token with an IV from the token's RNG; the caller builds the
 * GCM AAD (the XKS spec's construction lives with the wire layer).
 */
export class ExternalKeys {
  private readonly ivs = new IvSupply(IV_BYTES);

  constructor(private readonly token: Token) {}

  static label(externalKeyId: string): string {
    return `${EXTERNAL_KEY_LABEL_PREFIX}${externalKeyId}`;
  }

  /** Creates an external key; false when one with this id exists already. */
  async create(externalKeyId: string): Promise<boolean> {
    const label = ExternalKeys.label(externalKeyId);
    return this.token.run('create external key', async (session) => {
      if (this.find(session, externalKeyId)) return false;
      await this.token.creatingOnLoop(() => this.token.pkcs11.C_GenerateKey(session, { mechanism: pkcs11js.CKM_AES_KEY_GEN }, aesKeyTemplate(label, false)));
      return true;
    });
  }

  /** Ids of every external key in the token. */
  async list(): Promise<string[]> {
    return this.token.run('list external keys', async (session) =>
      (await this.token.lookup.search(session, [{ type: pkcs11js.CKA_CLASS, value: pkcs11js.CKO_SECRET_KEY }]))
        .map((h) => (this.token.pkcs11.C_GetAttributeValue(session, h, [{ type: pkcs11js.CKA_LABEL }])[0].value as Buffer | undefined)?.toString('utf8') ?? '')
        .filter((l) => l.startsWith(EXTERNAL_KEY_LABEL_PREFIX))
        .map((l) => l.slice(EXTERNAL_KEY_LABEL_PREFIX.length))
        .sort(),
    );
  }

  /** The key's spec and usages read from its attributes; undefined when there is no such key. */
  async metadata(externalKeyId: string): Promise<ExternalKeyMetadata | undefined> {
    return this.token.run('read external key', (session) => {
      const handle = this.find(session, externalKeyId);
      if (!handle) return undefined;
      const names = ['ENCRYPT', 'DECRYPT', 'SIGN', 'VERIFY', 'WRAP', 'UNWRAP'] as const;
      const attrs = this.token.pkcs11.C_GetAttributeValue(session, handle, [
        { type: pkcs11js.CKA_KEY_TYPE },
        { type: pkcs11js.CKA_VALUE_LEN },
        ...names.map((n) => ({ type: pkcs11js[`CKA_${n}`] })),
      ]);
      const keyType = ulongValue(attrs[0].value as Buffer);
      const bits = ulongValue(attrs[1].value as Buffer) * 8;
      const keySpec = keyType === pkcs11js.CKK_AES ? `AES_${bits}` : `UNSUPPORTED_${keyType}_${bits}`;
      const keyUsage = names.filter((_, i) => Boolean((attrs[i + 2].value as Buffer | undefined)?.[0]));
      return { keySpec, keyUsage: [...keyUsage] };
    });
  }

  async encrypt(externalKeyId: string, aad: Buffer, plaintext: Buffer): Promise<{ iv: Buffer; ciphertext: Buffer; tag: Buffer }> {
    return this.token.run('external key encrypt', async (session) => {
      const key = this.required(session, externalKeyId);
      const iv = this.ivs.take((bytes) => this.token.pkcs11.C_GenerateRandom(session, Buffer.alloc(bytes)));
      const sealed = await this.cryptoCall(() => {
        this.token.pkcs11.C_EncryptInit(session, gcmMechanism(iv, aad), key);
        return this.token.pkcs11.C_EncryptAsync(session, plaintext, Buffer.alloc(plaintext.length + TAG_BYTES));
      }, false);
      return { iv, ciphertext: sealed.subarray(0, sealed.length - TAG_BYTES), tag: sealed.subarray(sealed.length - TAG_BYTES) };
    });
  }

  async decrypt(externalKeyId: string, iv: Buffer, aad: Buffer, ciphertext: Buffer, tag: Buffer): Promise<Buffer> {
    return this.token.run('external key decrypt', async (session) => {
      const key = this.required(session, externalKeyId);
      const sealed = Buffer.concat([ciphertext, tag]);
      return this.cryptoCall(() => {
        this.token.pkcs11.C_DecryptInit(session, gcmMechanism(iv, aad), key);
        return this.token.pkcs11.C_DecryptAsync(session, sealed, Buffer.alloc(sealed.length));
      }, true);
    });
  }

  /** A live call into the token (health checks): its description and 16 bytes of its RNG. */
  async probe(): Promise<{ label: string; manufacturer: string; model: string; serialNumber: string }> {
    return this.token.run('external key health', (session) => {
      this.token.pkcs11.C_GenerateRandom(session, Buffer.alloc(16));
      return this.token.describe();
    });
  }

  /**
   * PKCS#11 failures of one GCM call, as the reference proxy maps them: a key that may not
   * do this is InvalidKeyUsage; on decryption a failed tag check (SoftHSM2: CKR_GENERAL_ERROR)
   * is InvalidCiphertext; anything else stays a device failure.
   */
  private async cryptoCall(call: () => Promise<Buffer>, decrypting: boolean): Promise<Buffer> {
    try {
      return await call();
    } catch (err) {
      const name = ckrName(err) ?? '';
      if (name === 'CKR_KEY_FUNCTION_NOT_PERMITTED') throw new KmsError('InvalidKeyUsageException', 'The external key cannot perform this operation.');
      const integrity = ['CKR_ENCRYPTED_DATA_INVALID', 'CKR_ENCRYPTED_DATA_LEN_RANGE', ...(decrypting ? ['CKR_FUNCTION_FAILED'] : [])];
      if (integrity.includes(name) || (decrypting && name === 'CKR_GENERAL_ERROR' && this.token.profile.quirks.gcmTagFailureIsGeneralError)) {
        throw new KmsError('InvalidCiphertextException', 'The ciphertext, IV, AAD or tag is not valid for this key.');
      }
      throw err;
    }
  }

  private find(session: Session, externalKeyId: string): Buffer | undefined {
    return this.token.lookup.findObject(session, ExternalKeys.label(externalKeyId), pkcs11js.CKO_SECRET_KEY);
  }

  private required(session: Session, externalKeyId: string): Buffer {
    const handle = this.find(session, externalKeyId);
    if (!handle) throw new KmsError('NotFoundException', `External key ${externalKeyId} does not exist.`);
    return handle;
  }
}
