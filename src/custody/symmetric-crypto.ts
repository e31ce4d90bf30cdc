import * as pkcs11js from 'pkcs11js';
import { KmsError } from '../errors';
import { derTotalLength } from './der';
import { IvSupply } from './iv-supply';
import { gcmMechanism } from './key-templates';
import { type MaterialRef, otherCandidates, requiredObject } from './material-objects';
import { ckrName } from './pkcs11-errors';
import type { Session, Token } from './token';

const GCM_TAG_BYTES = 16;
const GCM_IV_BYTES = 12;
const KWP_OVERHEAD_MAX = 15;

/** RFC 5649 adds an 8-byte integrity block (and at most 7 bytes of padding). */
const KWP_BLOCK = 8;

/**
 * Where a token run stands in its operation. `continuing`: the operation already did token
 * work in an earlier run (GenerateDataKeyPair's generation before it seals, ReEncrypt's open
 * before it seals again): it is not shed, since refusing it now would throw that work away
 * after admitting it (load shedding decides at an operation's first run).
 */
export type OperationStep = 'first' | 'continuing';
const FIRST_STEP: OperationStep = 'first';

function runOptionsOf(step: OperationStep): { mayShed: boolean } {
  return { mayShed: step === 'first' };
}

/** Symmetric master keys at work: AES-256-GCM, and data keys wrapped under them. */
export class SymmetricCrypto {
  private readonly ivs = new IvSupply(GCM_IV_BYTES);

  constructor(private readonly token: Token) {}

  /**
   * AES-256-GCM in the token with a fresh 96-bit IV from the token's RNG (iv-supply.ts), so no
   * caller can reuse an IV. Returns the IV and ciphertext‖tag.
   */
  async encrypt(ref: MaterialRef, aad: Buffer, plaintext: Buffer, step: OperationStep = FIRST_STEP): Promise<{ iv: Buffer; sealed: Buffer }> {
    return this.token.run('encrypt', async (session) => {
      const iv = this.ivs.take((bytes) => this.token.pkcs11.C_GenerateRandom(session, Buffer.alloc(bytes)));
      return { iv, sealed: await this.sealInSession(session, ref, iv, aad, plaintext) };
    }, runOptionsOf(step));
  }

  /**
   * A new secret of `length` bytes from the token's RNG, returned with its AES-256-GCM
   * encryption under `ref` (GenerateDataKey): one session and one draw for secret and IV.
   */
  async encryptNewSecret(ref: MaterialRef, aad: Buffer, length: number): Promise<{ plaintext: Buffer; iv: Buffer; sealed: Buffer }> {
    return this.token.run('generate and encrypt data key', async (session) => {
      const drawn = this.token.pkcs11.C_GenerateRandom(session, Buffer.alloc(length + GCM_IV_BYTES));
      const plaintext = Buffer.from(drawn.subarray(0, length));
      const iv = Buffer.from(drawn.subarray(length));
      drawn.fill(0);
      try {
        return { plaintext, iv, sealed: await this.sealInSession(session, ref, iv, aad, plaintext) };
      } catch (err) {
        plaintext.fill(0);
        throw err;
      }
    });
  }

  private async sealInSession(session: Session, ref: MaterialRef, iv: Buffer, aad: Buffer, plaintext: Buffer): Promise<Buffer> {
    const key = requiredObject(this.token, session, ref, pkcs11js.CKO_SECRET_KEY);
    this.token.pkcs11.C_EncryptInit(session, gcmMechanism(iv, aad), key);
    return this.token.pkcs11.C_EncryptAsync(session, plaintext, Buffer.alloc(plaintext.length + GCM_TAG_BYTES));
  }

  /**
   * AES-256-GCM decryption in the token. A failed tag check (wrong key version, context or
   * tampered bytes) raises InvalidCiphertextException, as AWS does, with no detail.
   */
  async decrypt(ref: MaterialRef, iv: Buffer, aad: Buffer, ciphertext: Buffer): Promise<Buffer> {
    if (iv.length !== GCM_IV_BYTES || ciphertext.length < GCM_TAG_BYTES) throw invalidCiphertext();
    return this.token.run('decrypt', (session) =>
      this.withEachCandidate(session, ref, async (key) => {
        this.token.pkcs11.C_DecryptInit(session, gcmMechanism(iv, aad), key);
        try {
          return await this.token.pkcs11.C_DecryptAsync(session, ciphertext, Buffer.alloc(ciphertext.length));
        } catch (err) {
          if (this.isTagFailure(err)) return undefined;
          throw err;
        }
      }),
    );
  }

  /**
   * Opens with the material's key (`open` answers undefined when the integrity check fails)
   * and, when one creation id names several objects (material-objects.ts, otherCandidates),
   * with each other: only the right key passes the check, so a ciphertext made by a process
   * that chose another of them opens too. InvalidCiphertextException when none passes.
   */
  private async withEachCandidate<T>(session: Session, ref: MaterialRef, open: (key: Buffer) => Promise<T | undefined>): Promise<T> {
    const key = requiredObject(this.token, session, ref, pkcs11js.CKO_SECRET_KEY);
    const opened = await open(key);
    if (opened !== undefined) return opened;
    for (const other of otherCandidates(this.token, ref, pkcs11js.CKO_SECRET_KEY, key)) {
      const byOther = await open(other);
      if (byOther !== undefined) return byOther;
    }
    throw invalidCiphertext();
  }

  /** A wrapped secret unwrapped into a session object with `key`; undefined when the integrity check fails. */
  private async unwrapWith(session: Session, key: Buffer, wrapped: Buffer, sensitive: boolean): Promise<Buffer | undefined> {
    try {
      return await this.unwrapToSession(session, key, wrapped, sensitive);
    } catch (err) {
      if (err instanceof KmsError && err.name === 'InvalidCiphertextException') return undefined;
      throw err;
    }
  }

  /** Refuses, before anything is generated (and before DryRun answers), a secret longer than the token holds. */
  checkSecretLength(length: number): void {
    checkSecretLength(this.token, length);
  }

  /**
   * Generates a secret of `length` bytes inside the token and returns it wrapped
   * (AES key wrap with padding, RFC 5649) under the master key. The plaintext secret never
   * exists outside the token.
   */
  async generateWrappedSecret(ref: MaterialRef, length: number): Promise<Buffer> {
    checkSecretLength(this.token, length);
    return this.token.run('generate wrapped data key', async (session) => {
      const wrappingKey = requiredObject(this.token, session, ref, pkcs11js.CKO_SECRET_KEY);
      const secret = await this.token.pkcs11.C_GenerateKeyAsync(
        session,
        { mechanism: pkcs11js.CKM_GENERIC_SECRET_KEY_GEN },
        sessionSecretTemplate(length, true),
      );
      try {
        return await this.token.pkcs11.C_WrapKeyAsync(
          session,
          { mechanism: this.token.rfc5649 },
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
  async unwrapSecret(ref: MaterialRef, wrapped: Buffer, length: number, step: OperationStep = FIRST_STEP): Promise<Buffer> {
    checkSecretLength(this.token, wrapped.length - KWP_BLOCK);
    return this.token.run('unwrap data key', async (session) => {
      const secret = await this.withEachCandidate(session, ref, (key) => this.unwrapWith(session, key, wrapped, false));
      try {
        const [attr] = this.token.pkcs11.C_GetAttributeValue(session, secret, [{ type: pkcs11js.CKA_VALUE }]);
        const value = attr.value as Buffer;
        // The token may return the padded length (SoftHSM2 2.6); the true length travels with
        // the blob, or (length 0) the secret is a DER structure that delimits itself.
        const trueLength = length === 0 ? derTotalLength(value) : length;
        if (trueLength === undefined || value.length < trueLength) throw invalidCiphertext();
        return Buffer.from(value.subarray(0, trueLength));
      } finally {
        this.token.pkcs11.C_DestroyObject(session, secret);
      }
    }, runOptionsOf(step));
  }

  /** Moves a wrapped secret from one master key to another without it leaving the token. */
  async rewrapSecret(from: MaterialRef, wrapped: Buffer, to: MaterialRef): Promise<Buffer> {
    checkSecretLength(this.token, wrapped.length - KWP_BLOCK);
    return this.token.run('rewrap data key', async (session) => {
      const destination = requiredObject(this.token, session, to, pkcs11js.CKO_SECRET_KEY);
      const secret = await this.withEachCandidate(session, from, (key) => this.unwrapWith(session, key, wrapped, true));
      try {
        return await this.token.pkcs11.C_WrapKeyAsync(
          session,
          { mechanism: this.token.rfc5649 },
          destination,
          secret,
          Buffer.alloc(wrapped.length + KWP_OVERHEAD_MAX + 8),
        );
      } finally {
        this.token.pkcs11.C_DestroyObject(session, secret);
      }
    });
  }

  private async unwrapToSession(session: Session, wrappingKey: Buffer, wrapped: Buffer, sensitive: boolean): Promise<Buffer> {
    try {
      return await this.token.pkcs11.C_UnwrapKeyAsync(
        session,
        { mechanism: this.token.rfc5649 },
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

  private isTagFailure(err: unknown): boolean {
    const name = ckrName(err);
    if (name === 'CKR_ENCRYPTED_DATA_INVALID' || name === 'CKR_ENCRYPTED_DATA_LEN_RANGE') return true;
    return name === 'CKR_GENERAL_ERROR' && this.token.profile.quirks.gcmTagFailureIsGeneralError;
  }
}

/** Refuses secrets longer than the token can hold (profile quirk maxSecretBytes). */
export function checkSecretLength(token: Token, bytes: number, what = `data keys of ${bytes} bytes`): void {
  const max = token.profile.quirks.maxSecretBytes;
  if (max !== undefined && bytes > max) {
    throw new KmsError('UnsupportedOperationException', `This key store's token holds secrets of at most ${max} bytes, so it cannot make or open ${what}.`);
  }
}

export function invalidCiphertext(): KmsError {
  return new KmsError('InvalidCiphertextException', '');
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
