import * as pkcs11js from 'pkcs11js';
import { KmsError } from '../errors';
import { ckrName } from './pkcs11-errors';
import type { Session, Token } from './token';

/**
 * Names one piece of key material inside the token. The label is what
 * `pkcs11-tool --list-objects` shows: `p11kms:<key id>:v<material version>`.
 */
export interface MaterialRef {
  keyId: string;
  version: number;
}

export const MATERIAL_LABEL_PREFIX = 'p11kms:';

export function materialLabel(ref: MaterialRef): string {
  return `${MATERIAL_LABEL_PREFIX}${ref.keyId}:v${ref.version}`;
}

export function parseMaterialLabel(label: string): MaterialRef | undefined {
  const match = /^p11kms:([0-9a-f-]{36}):v(\d+)$/.exec(label);
  return match ? { keyId: match[1], version: Number(match[2]) } : undefined;
}

/** Security attributes of a token object, as read back from the token. */
export interface MaterialAttributes {
  token: boolean;
  sensitive: boolean;
  extractable: boolean;
  alwaysSensitive: boolean;
  neverExtractable: boolean;
}

const GCM_TAG_BYTES = 16;
const GCM_IV_BYTES = 12;
const KWP_OVERHEAD_MAX = 15;

/**
 * Every use of a master key is one of these calls into the token. No method returns or
 * accepts master-key bytes; data keys leave the token only where the KMS API returns them
 * as plaintext.
 */
export class KeyCustody {
  constructor(private readonly token: Token) {}

  get profileName(): string {
    return this.token.profile.name;
  }

  /** Creates an AES-256 master key in the token: sensitive, never extractable. */
  async generateSymmetricKey(ref: MaterialRef): Promise<void> {
    const label = materialLabel(ref);
    await this.token.run('generate symmetric key', (session) =>
      this.token.pkcs11.C_GenerateKeyAsync(session, { mechanism: pkcs11js.CKM_AES_KEY_GEN }, [
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
        { type: pkcs11js.CKA_WRAP, value: true },
        { type: pkcs11js.CKA_UNWRAP, value: true },
        { type: pkcs11js.CKA_SIGN, value: false },
        { type: pkcs11js.CKA_VERIFY, value: false },
        { type: pkcs11js.CKA_DERIVE, value: false },
        { type: pkcs11js.CKA_LABEL, value: label },
        { type: pkcs11js.CKA_ID, value: Buffer.from(label) },
      ]),
    );
  }

  /** Destroys the material; returns false when the token had no such object. */
  async destroy(ref: MaterialRef): Promise<boolean> {
    const label = materialLabel(ref);
    return this.token.run('destroy key', (session) => {
      const handles = this.token.findAll(session, [{ type: pkcs11js.CKA_LABEL, value: label }]);
      for (const handle of handles) this.token.pkcs11.C_DestroyObject(session, handle);
      this.token.forgetObject(label, pkcs11js.CKO_SECRET_KEY);
      return handles.length > 0;
    });
  }

  async exists(ref: MaterialRef): Promise<boolean> {
    return this.token.run('find key', (session) => this.secretKey(session, ref, false) !== undefined);
  }

  /** Labels of every p11kms-owned object in the token (start-up reconciliation). */
  async listMaterial(): Promise<MaterialRef[]> {
    return this.token.run('list keys', (session) => {
      const handles = this.token.findAll(session, [{ type: pkcs11js.CKA_TOKEN, value: true }]);
      const refs: MaterialRef[] = [];
      for (const handle of handles) {
        const [attr] = this.token.pkcs11.C_GetAttributeValue(session, handle, [{ type: pkcs11js.CKA_LABEL }]);
        const ref = parseMaterialLabel(attr.value ? attr.value.toString('utf8') : '');
        if (ref) refs.push(ref);
      }
      return refs;
    });
  }

  async attributes(ref: MaterialRef): Promise<MaterialAttributes> {
    return this.token.run('read key attributes', (session) => {
      const handle = this.secretKey(session, ref, true)!;
      const attrs = this.token.pkcs11.C_GetAttributeValue(session, handle, [
        { type: pkcs11js.CKA_TOKEN },
        { type: pkcs11js.CKA_SENSITIVE },
        { type: pkcs11js.CKA_EXTRACTABLE },
        { type: pkcs11js.CKA_ALWAYS_SENSITIVE },
        { type: pkcs11js.CKA_NEVER_EXTRACTABLE },
      ]);
      const flag = (i: number) => Boolean(attrs[i].value && (attrs[i].value as Buffer)[0]);
      return { token: flag(0), sensitive: flag(1), extractable: flag(2), alwaysSensitive: flag(3), neverExtractable: flag(4) };
    });
  }

  /**
   * AES-256-GCM in the token with a fresh 96-bit IV drawn from the token's RNG in the same
   * session, so no caller can reuse an IV. Returns the IV and ciphertext‖tag.
   */
  async encrypt(ref: MaterialRef, aad: Buffer, plaintext: Buffer): Promise<{ iv: Buffer; sealed: Buffer }> {
    return this.token.run('encrypt', async (session) => {
      const key = this.secretKey(session, ref, true)!;
      const iv = this.token.pkcs11.C_GenerateRandom(session, Buffer.alloc(GCM_IV_BYTES));
      this.token.pkcs11.C_EncryptInit(session, gcm(iv, aad), key);
      const sealed = await this.token.pkcs11.C_EncryptAsync(session, plaintext, Buffer.alloc(plaintext.length + GCM_TAG_BYTES));
      return { iv, sealed };
    });
  }

  /**
   * AES-256-GCM decryption in the token. A failed tag check (wrong key version, context or
   * tampered bytes) raises InvalidCiphertextException, as AWS does, with no detail.
   */
  async decrypt(ref: MaterialRef, iv: Buffer, aad: Buffer, ciphertext: Buffer): Promise<Buffer> {
    if (iv.length !== GCM_IV_BYTES || ciphertext.length < GCM_TAG_BYTES) throw invalidCiphertext();
    return this.token.run('decrypt', async (session) => {
      const key = this.secretKey(session, ref, true)!;
      this.token.pkcs11.C_DecryptInit(session, gcm(iv, aad), key);
      try {
        return await this.token.pkcs11.C_DecryptAsync(session, ciphertext, Buffer.alloc(ciphertext.length));
      } catch (err) {
        if (this.isTagFailure(err)) throw invalidCiphertext();
        throw err;
      }
    });
  }

  /**
   * Generates a secret of `length` bytes inside the token and returns it wrapped
   * (AES key wrap with padding, RFC 5649) under the master key. The plaintext secret never
   * exists outside the token.
   */
  async generateWrappedSecret(ref: MaterialRef, length: number): Promise<Buffer> {
    return this.token.run('generate wrapped data key', async (session) => {
      const wrappingKey = this.secretKey(session, ref, true)!;
      const secret = await this.token.pkcs11.C_GenerateKeyAsync(
        session,
        { mechanism: pkcs11js.CKM_GENERIC_SECRET_KEY_GEN },
        sessionSecretTemplate(length, true),
      );
      try {
        return await this.token.pkcs11.C_WrapKeyAsync(
          session,
          { mechanism: pkcs11js.CKM_AES_KEY_WRAP_PAD },
          wrappingKey,
          secret,
          Buffer.alloc(length + KWP_OVERHEAD_MAX + 8),
        );
      } finally {
        this.token.pkcs11.C_DestroyObject(session, secret);
      }
    });
  }

  /** Unwraps a secret made by generateWrappedSecret and returns its bytes (for Decrypt). */
  async unwrapSecret(ref: MaterialRef, wrapped: Buffer, length: number): Promise<Buffer> {
    return this.token.run('unwrap data key', async (session) => {
      const wrappingKey = this.secretKey(session, ref, true)!;
      const secret = await this.unwrapToSession(session, wrappingKey, wrapped, false);
      try {
        const [attr] = this.token.pkcs11.C_GetAttributeValue(session, secret, [{ type: pkcs11js.CKA_VALUE }]);
        const value = attr.value as Buffer;
        // The token may return the padded length (SoftHSM2 2.6); the true length travels with the blob.
        if (value.length < length) throw invalidCiphertext();
        return Buffer.from(value.subarray(0, length));
      } finally {
        this.token.pkcs11.C_DestroyObject(session, secret);
      }
    });
  }

  /** Moves a wrapped secret from one master key to another without it leaving the token. */
  async rewrapSecret(from: MaterialRef, wrapped: Buffer, to: MaterialRef): Promise<Buffer> {
    return this.token.run('rewrap data key', async (session) => {
      const source = this.secretKey(session, from, true)!;
      const destination = this.secretKey(session, to, true)!;
      const secret = await this.unwrapToSession(session, source, wrapped, true);
      try {
        return await this.token.pkcs11.C_WrapKeyAsync(
          session,
          { mechanism: pkcs11js.CKM_AES_KEY_WRAP_PAD },
          destination,
          secret,
          Buffer.alloc(wrapped.length + KWP_OVERHEAD_MAX + 8),
        );
      } finally {
        this.token.pkcs11.C_DestroyObject(session, secret);
      }
    });
  }

  async random(length: number): Promise<Buffer> {
    return this.token.run('generate random', (session) =>
      this.token.pkcs11.C_GenerateRandom(session, Buffer.alloc(length)),
    );
  }

  private async unwrapToSession(session: Session, wrappingKey: Buffer, wrapped: Buffer, sensitive: boolean): Promise<Buffer> {
    try {
      return await this.token.pkcs11.C_UnwrapKeyAsync(
        session,
        { mechanism: pkcs11js.CKM_AES_KEY_WRAP_PAD },
        wrappingKey,
        wrapped,
        [
          { type: pkcs11js.CKA_CLASS, value: pkcs11js.CKO_SECRET_KEY },
          { type: pkcs11js.CKA_KEY_TYPE, value: pkcs11js.CKK_GENERIC_SECRET },
          { type: pkcs11js.CKA_TOKEN, value: false },
          { type: pkcs11js.CKA_SENSITIVE, value: sensitive },
          { type: pkcs11js.CKA_EXTRACTABLE, value: true },
        ],
      );
    } catch (err) {
      const name = ckrName(err);
      if (name === 'CKR_WRAPPED_KEY_INVALID' || name === 'CKR_WRAPPED_KEY_LEN_RANGE' || name === 'CKR_UNWRAPPING_KEY_HANDLE_INVALID' || name === 'CKR_GENERAL_ERROR') {
        throw invalidCiphertext();
      }
      throw err;
    }
  }

  private secretKey(session: Session, ref: MaterialRef, required: boolean): Buffer | undefined {
    const handle = this.token.findObject(session, materialLabel(ref), pkcs11js.CKO_SECRET_KEY);
    if (!handle && required) {
      throw new KmsError('KeyUnavailableException', 'The key material is not available in the key store.', {
        internalDetail: `no token object labelled ${materialLabel(ref)}`,
      });
    }
    return handle;
  }

  private isTagFailure(err: unknown): boolean {
    const name = ckrName(err);
    if (name === 'CKR_ENCRYPTED_DATA_INVALID' || name === 'CKR_ENCRYPTED_DATA_LEN_RANGE') return true;
    return name === 'CKR_GENERAL_ERROR' && this.token.profile.quirks.gcmTagFailureIsGeneralError;
  }
}

function gcm(iv: Buffer, aad: Buffer): pkcs11js.Mechanism {
  // CK_PARAMS_GCM with ivBits: the AES_GCM variant leaves ulIvBits uninitialised.
  return {
    mechanism: pkcs11js.CKM_AES_GCM,
    parameter: { type: pkcs11js.CK_PARAMS_GCM, iv, aad, ivBits: iv.length * 8, tagBits: GCM_TAG_BYTES * 8 } as pkcs11js.GcmParams,
  };
}

function sessionSecretTemplate(length: number, sensitive: boolean): pkcs11js.Template {
  return [
    { type: pkcs11js.CKA_CLASS, value: pkcs11js.CKO_SECRET_KEY },
    { type: pkcs11js.CKA_KEY_TYPE, value: pkcs11js.CKK_GENERIC_SECRET },
    { type: pkcs11js.CKA_TOKEN, value: false },
    { type: pkcs11js.CKA_VALUE_LEN, value: length },
    { type: pkcs11js.CKA_SENSITIVE, value: sensitive },
    { type: pkcs11js.CKA_EXTRACTABLE, value: true },
  ];
}

function invalidCiphertext(): KmsError {
  return new KmsError('InvalidCiphertextException', '');
}
