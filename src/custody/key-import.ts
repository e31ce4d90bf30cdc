import * as pkcs11js from 'pkcs11js';
import { KmsError } from '../errors';
import type { KeySpec } from '../model/generated/types';
import { familyOf } from './key-templates';
import { ckrName } from './pkcs11-errors';
import { spkiOf } from './public-keys';
import { oaepDecode, type OaepHash } from './rsa-oaep';
import type { ObjectHandle, Session, Token } from './token';

/**
 * Bring-your-own-key import (GetParametersForImport / ImportKeyMaterial) inside the token.
 *
 * The wrapping key pair is a token RSA pair labelled `p11kms-import:<key id>:<wrapping id>`;
 * its private half is sensitive, never extractable, and may only unwrap and decrypt.
 * Imported material is first unwrapped into a sensitive, non-extractable *session* object;
 * the token computes its key check value there, and only material the caller's decision
 * accepts is copied (C_CopyObject) into a token object with the material label. Which
 * wrapping algorithms keep the material entirely inside the token: docs/key-custody.md.
 */

export type WrappingAlgorithm = 'RSAES_PKCS1_V1_5' | 'RSAES_OAEP_SHA_1' | 'RSAES_OAEP_SHA_256' | 'RSA_AES_KEY_WRAP_SHA_1' | 'RSA_AES_KEY_WRAP_SHA_256';
export type WrappingKeySpec = 'RSA_2048' | 'RSA_3072' | 'RSA_4096';

export interface WrappingRef {
  keyId: string;
  wrappingId: string;
}

export const WRAPPING_LABEL_PREFIX = 'p11kms-import:';

export function wrappingLabel(ref: WrappingRef): string {
  return `${WRAPPING_LABEL_PREFIX}${ref.keyId}:${ref.wrappingId}`;
}

export function parseWrappingLabel(label: string): WrappingRef | undefined {
  const match = /^p11kms-import:([0-9a-f-]{36}):([0-9a-f]{32})$/.exec(label);
  return match ? { keyId: match[1], wrappingId: match[2] } : undefined;
}

/** Fixed inputs of the key check values (public constants; the value proves the key, not the input). */
const KCV_BLOCK = Buffer.alloc(16);
const KCV_MESSAGE = Buffer.from('p11kms key check value v1', 'utf8');

/** Largest HMAC key AWS accepts per spec (the smallest is the hash length, which the token enforces). */
const HMAC_MAX_BYTES: Record<string, number> = { HMAC_224: 64, HMAC_256: 64, HMAC_384: 128, HMAC_512: 128 };

const HMAC_MECHANISM: Record<string, number> = {
  HMAC_224: pkcs11js.CKM_SHA224_HMAC,
  HMAC_256: pkcs11js.CKM_SHA256_HMAC,
  HMAC_384: pkcs11js.CKM_SHA384_HMAC,
  HMAC_512: pkcs11js.CKM_SHA512_HMAC,
};

/** Which path an import takes; also what the docs and the tests name. */
export function importPath(algorithm: WrappingAlgorithm, oaepHashesInToken: readonly string[] | undefined): 'token' | 'raw-rsa-then-token' {
  const hash = algorithm.endsWith('SHA_256') ? 'sha256' : 'sha1';
  if (algorithm === 'RSAES_PKCS1_V1_5') return 'token';
  return (oaepHashesInToken ?? ['sha1', 'sha256']).includes(hash) ? 'token' : 'raw-rsa-then-token';
}

export class KeyImporter {
  constructor(private readonly token: Token) {}

  /** A fresh RSA wrapping pair in the token; returns the DER SPKI of its public half. */
  async generateWrappingKey(ref: WrappingRef, spec: WrappingKeySpec): Promise<Buffer> {
    const label = wrappingLabel(ref);
    const common: pkcs11js.Template = [
      { type: pkcs11js.CKA_TOKEN, value: true },
      { type: pkcs11js.CKA_LABEL, value: label },
      { type: pkcs11js.CKA_ID, value: Buffer.from(label) },
    ];
    return this.token.run('generate import wrapping key', async (session) => {
      const pair = await this.token.pkcs11.C_GenerateKeyPairAsync(
        session,
        { mechanism: pkcs11js.CKM_RSA_PKCS_KEY_PAIR_GEN },
        [
          ...common,
          { type: pkcs11js.CKA_MODULUS_BITS, value: Number(spec.slice('RSA_'.length)) },
          { type: pkcs11js.CKA_PUBLIC_EXPONENT, value: Buffer.from([1, 0, 1]) },
          { type: pkcs11js.CKA_ENCRYPT, value: true },
          { type: pkcs11js.CKA_WRAP, value: true },
          { type: pkcs11js.CKA_VERIFY, value: false },
        ],
        [
          ...common,
          { type: pkcs11js.CKA_PRIVATE, value: true },
          { type: pkcs11js.CKA_SENSITIVE, value: true },
          { type: pkcs11js.CKA_EXTRACTABLE, value: false },
          { type: pkcs11js.CKA_UNWRAP, value: true },
          { type: pkcs11js.CKA_DECRYPT, value: true },
          { type: pkcs11js.CKA_SIGN, value: false },
        ],
      );
      const [n, e] = this.token.pkcs11.C_GetAttributeValue(session, pair.publicKey, [{ type: pkcs11js.CKA_MODULUS }, { type: pkcs11js.CKA_PUBLIC_EXPONENT }]);
      return spkiOf(spec as KeySpec, { family: 'rsa', modulus: n.value as Buffer, exponent: e.value as Buffer });
    });
  }

  async destroyWrappingKey(ref: WrappingRef): Promise<boolean> {
    const label = wrappingLabel(ref);
    return this.token.run('destroy import wrapping key', (session) => {
      const handles = this.token.findAll(session, [{ type: pkcs11js.CKA_LABEL, value: label }]);
      for (const handle of handles) this.token.pkcs11.C_DestroyObject(session, handle);
      this.token.forgetObject(label, pkcs11js.CKO_PRIVATE_KEY);
      this.token.forgetObject(label, pkcs11js.CKO_PUBLIC_KEY);
      return handles.length > 0;
    });
  }

  async listWrappingKeys(): Promise<WrappingRef[]> {
    return this.token.run('list import wrapping keys', (session) => {
      const refs = new Map<string, WrappingRef>();
      for (const handle of this.token.findAll(session, [{ type: pkcs11js.CKA_TOKEN, value: true }])) {
        const [attr] = this.token.pkcs11.C_GetAttributeValue(session, handle, [{ type: pkcs11js.CKA_LABEL }]);
        const label = attr.value ? attr.value.toString('utf8') : '';
        const ref = parseWrappingLabel(label);
        if (ref) refs.set(label, ref);
      }
      return [...refs.values()];
    });
  }

  /**
   * Unwraps imported material into a sensitive session object, has the token compute its
   * key check value, and asks `decide` what to do: a label makes it a token object with that
   * label (unless one exists already), undefined discards it. Returns the check value and
   * whether a token object was created.
   */
  async importMaterial(
    request: { wrapping: WrappingRef; algorithm: WrappingAlgorithm; wrappingKeySpec: WrappingKeySpec; encrypted: Buffer; spec: KeySpec },
    decide: (checkValue: string) => string | undefined,
  ): Promise<{ checkValue: string; created: boolean }> {
    const family = familyOf(request.spec);
    if (family !== 'aes' && family !== 'hmac') {
      throw new KmsError('UnsupportedOperationException', `p11kms cannot import ${request.spec} key material yet.`);
    }
    return this.token.run('import key material', async (session) => {
      const secret = await this.unwrapToSession(session, request, family);
      try {
        const valueLength = this.lengthOf(session, secret);
        if (family === 'aes' ? valueLength !== 32 : valueLength > HMAC_MAX_BYTES[request.spec]) throw wrongLength(request.spec);
        let checkValue: string;
        try {
          checkValue = this.checkValueOf(session, secret, request.spec);
        } catch (err) {
          if (ckrName(err) === 'CKR_KEY_SIZE_RANGE') throw wrongLength(request.spec);
          throw err;
        }
        const label = decide(checkValue);
        let created = false;
        if (label !== undefined && !this.token.findObject(session, label, pkcs11js.CKO_SECRET_KEY)) {
          this.token.pkcs11.C_CopyObject(session, secret, [
            { type: pkcs11js.CKA_TOKEN, value: true },
            { type: pkcs11js.CKA_PRIVATE, value: true },
            { type: pkcs11js.CKA_LABEL, value: label },
            { type: pkcs11js.CKA_ID, value: Buffer.from(label) },
            { type: pkcs11js.CKA_EXTRACTABLE, value: false },
            { type: pkcs11js.CKA_MODIFIABLE, value: false },
          ]);
          created = true;
        }
        return { checkValue, created };
      } finally {
        this.token.pkcs11.C_DestroyObject(session, secret);
      }
    });
  }

  /**
   * The length of a session secret, found inside the token (SoftHSM2 leaves CKA_VALUE_LEN at 0
   * on unwrapped keys): it is wrapped with AES-KWP under a random session key that is
   * destroyed at once, and the wrapped length gives the value length rounded up to 8 bytes.
   * This is why the session object is extractable; its token copy is not.
   */
  private lengthOf(session: Session, secret: ObjectHandle): number {
    const p = this.token.pkcs11;
    const probe = p.C_GenerateKey(session, { mechanism: pkcs11js.CKM_AES_KEY_GEN }, [
      { type: pkcs11js.CKA_CLASS, value: pkcs11js.CKO_SECRET_KEY },
      { type: pkcs11js.CKA_KEY_TYPE, value: pkcs11js.CKK_AES },
      { type: pkcs11js.CKA_VALUE_LEN, value: 32 },
      { type: pkcs11js.CKA_TOKEN, value: false },
      { type: pkcs11js.CKA_SENSITIVE, value: true },
      { type: pkcs11js.CKA_EXTRACTABLE, value: false },
      { type: pkcs11js.CKA_WRAP, value: true },
    ]);
    try {
      const wrapped = p.C_WrapKey(session, { mechanism: pkcs11js.CKM_AES_KEY_WRAP_PAD }, probe, secret, Buffer.alloc(1024));
      return wrapped.length - 8;
    } finally {
      p.C_DestroyObject(session, probe);
    }
  }

  /** The key check value of material already in the token (for tests and diagnostics). */
  async checkValue(label: string, spec: KeySpec): Promise<string> {
    return this.token.run('key check value', (session) => {
      const handle = this.token.findObject(session, label, pkcs11js.CKO_SECRET_KEY);
      if (!handle) throw new KmsError('KeyUnavailableException', 'The key material is not available in the key store.');
      return this.checkValueOf(session, handle, spec);
    });
  }

  private checkValueOf(session: Session, key: ObjectHandle, spec: KeySpec): string {
    const p = this.token.pkcs11;
    if (familyOf(spec) === 'aes') {
      p.C_EncryptInit(session, { mechanism: pkcs11js.CKM_AES_ECB }, key);
      return p.C_Encrypt(session, KCV_BLOCK, Buffer.alloc(16)).toString('hex');
    }
    p.C_SignInit(session, { mechanism: HMAC_MECHANISM[spec] }, key);
    return p.C_Sign(session, KCV_MESSAGE, Buffer.alloc(64)).toString('hex');
  }

  private targetTemplate(family: 'aes' | 'hmac'): pkcs11js.Template {
    const aes = family === 'aes';
    return [
      { type: pkcs11js.CKA_CLASS, value: pkcs11js.CKO_SECRET_KEY },
      { type: pkcs11js.CKA_KEY_TYPE, value: aes ? pkcs11js.CKK_AES : pkcs11js.CKK_GENERIC_SECRET },
      { type: pkcs11js.CKA_TOKEN, value: false },
      { type: pkcs11js.CKA_SENSITIVE, value: true },
      // Extractable only while it is a session object, for the length check; see lengthOf.
      { type: pkcs11js.CKA_EXTRACTABLE, value: true },
      { type: pkcs11js.CKA_ENCRYPT, value: aes },
      { type: pkcs11js.CKA_DECRYPT, value: aes },
      { type: pkcs11js.CKA_WRAP, value: aes },
      { type: pkcs11js.CKA_UNWRAP, value: aes },
      { type: pkcs11js.CKA_SIGN, value: !aes },
      { type: pkcs11js.CKA_VERIFY, value: !aes },
      { type: pkcs11js.CKA_DERIVE, value: false },
    ];
  }

  private async unwrapToSession(
    session: Session,
    request: { wrapping: WrappingRef; algorithm: WrappingAlgorithm; wrappingKeySpec: WrappingKeySpec; encrypted: Buffer },
    family: 'aes' | 'hmac',
  ): Promise<ObjectHandle> {
    const p = this.token.pkcs11;
    const label = wrappingLabel(request.wrapping);
    const privateKey = this.token.findObject(session, label, pkcs11js.CKO_PRIVATE_KEY);
    if (!privateKey) throw new KmsError('InvalidImportTokenException', 'Import token is invalid or expired.', { internalDetail: `no wrapping key ${label}` });
    const modulusBytes = Number(request.wrappingKeySpec.slice('RSA_'.length)) / 8;
    const template = this.targetTemplate(family);
    const hash: OaepHash = request.algorithm.endsWith('SHA_256') ? 'sha256' : 'sha1';
    const inToken = importPath(request.algorithm, this.token.profile.quirks.oaepHashesInToken) === 'token';
    const { encrypted } = request;
    try {
      if (request.algorithm === 'RSAES_PKCS1_V1_5') {
        return await p.C_UnwrapKeyAsync(session, { mechanism: pkcs11js.CKM_RSA_PKCS }, privateKey, encrypted, template);
      }
      if (request.algorithm === 'RSAES_OAEP_SHA_1' || request.algorithm === 'RSAES_OAEP_SHA_256') {
        if (inToken) return await p.C_UnwrapKeyAsync(session, oaep(hash), privateKey, encrypted, template);
        // Raw RSA in the token, OAEP decoding here: the material is in process memory
        // from decoding until C_CreateObject returns, then zeroed (docs/key-custody.md).
        const material = this.rawOaepDecrypt(session, privateKey, encrypted, modulusBytes, hash);
        try {
          return p.C_CreateObject(session, [...template, { type: pkcs11js.CKA_VALUE, value: material }]);
        } finally {
          material.fill(0);
        }
      }
      // RSA_AES_KEY_WRAP: RSA-OAEP(ephemeral AES key) ‖ AES-KWP(material). The ephemeral key
      // becomes a sensitive session object; the material is unwrapped from it in the token.
      if (encrypted.length <= modulusBytes) throw invalidCiphertext();
      const wrappedKey = encrypted.subarray(0, modulusBytes);
      const wrappedMaterial = encrypted.subarray(modulusBytes);
      const aesTemplate: pkcs11js.Template = [
        { type: pkcs11js.CKA_CLASS, value: pkcs11js.CKO_SECRET_KEY },
        { type: pkcs11js.CKA_KEY_TYPE, value: pkcs11js.CKK_AES },
        { type: pkcs11js.CKA_TOKEN, value: false },
        { type: pkcs11js.CKA_SENSITIVE, value: true },
        { type: pkcs11js.CKA_EXTRACTABLE, value: false },
        { type: pkcs11js.CKA_UNWRAP, value: true },
        { type: pkcs11js.CKA_ENCRYPT, value: false },
        { type: pkcs11js.CKA_DECRYPT, value: false },
      ];
      let ephemeral: ObjectHandle;
      if (inToken) {
        ephemeral = await p.C_UnwrapKeyAsync(session, oaep(hash), privateKey, wrappedKey, aesTemplate);
      } else {
        // Only the ephemeral AES key passes through process memory here, never the material.
        const aesKey = this.rawOaepDecrypt(session, privateKey, wrappedKey, modulusBytes, hash);
        try {
          if (aesKey.length !== 32 && aesKey.length !== 24 && aesKey.length !== 16) throw invalidCiphertext();
          ephemeral = p.C_CreateObject(session, [...aesTemplate, { type: pkcs11js.CKA_VALUE, value: aesKey }]);
        } finally {
          aesKey.fill(0);
        }
      }
      try {
        return await p.C_UnwrapKeyAsync(session, { mechanism: pkcs11js.CKM_AES_KEY_WRAP_PAD }, ephemeral, wrappedMaterial, template);
      } finally {
        p.C_DestroyObject(session, ephemeral);
      }
    } catch (err) {
      if (err instanceof KmsError) throw err;
      const name = ckrName(err) ?? '';
      if (UNWRAP_FAILURES.has(name)) throw invalidCiphertext();
      throw err;
    }
  }

  /** CKM_RSA_X_509 in the token, then constant-time OAEP decoding here; every failure is the same. */
  private rawOaepDecrypt(session: Session, privateKey: ObjectHandle, ciphertext: Buffer, modulusBytes: number, hash: OaepHash): Buffer {
    if (ciphertext.length !== modulusBytes) throw invalidCiphertext();
    const p = this.token.pkcs11;
    p.C_DecryptInit(session, { mechanism: pkcs11js.CKM_RSA_X_509 }, privateKey);
    const output = p.C_Decrypt(session, ciphertext, Buffer.alloc(modulusBytes));
    const block = Buffer.concat([Buffer.alloc(modulusBytes - output.length), output]);
    output.fill(0);
    const message = oaepDecode(block, hash);
    block.fill(0);
    if (!message) throw invalidCiphertext();
    return message;
  }
}

function oaep(hash: OaepHash): pkcs11js.Mechanism {
  return {
    mechanism: pkcs11js.CKM_RSA_PKCS_OAEP,
    parameter: {
      type: pkcs11js.CK_PARAMS_RSA_OAEP,
      hashAlg: hash === 'sha1' ? pkcs11js.CKM_SHA_1 : pkcs11js.CKM_SHA256,
      mgf: hash === 'sha1' ? pkcs11js.CKG_MGF1_SHA1 : pkcs11js.CKG_MGF1_SHA256,
      source: 1,
    } as pkcs11js.RsaOAEP,
  };
}

const UNWRAP_FAILURES = new Set([
  'CKR_WRAPPED_KEY_INVALID',
  'CKR_WRAPPED_KEY_LEN_RANGE',
  'CKR_ENCRYPTED_DATA_INVALID',
  'CKR_ENCRYPTED_DATA_LEN_RANGE',
  'CKR_DATA_INVALID',
  'CKR_DATA_LEN_RANGE',
  'CKR_KEY_SIZE_RANGE',
  'CKR_TEMPLATE_INCONSISTENT',
  'CKR_ATTRIBUTE_VALUE_INVALID',
  'CKR_GENERAL_ERROR',
]);

function wrongLength(spec: KeySpec): KmsError {
  return new KmsError('ValidationException', `The key material is not of a length key spec ${spec} accepts.`);
}

function invalidCiphertext(): KmsError {
  return new KmsError('InvalidCiphertextException', 'The wrapped key material could not be unwrapped with the import parameters.');
}
