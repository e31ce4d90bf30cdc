import { constants as cryptoConstants, createCipheriv, createECDH, createHash, createPublicKey, ECDH, randomBytes, verify as cryptoVerify } from 'node:crypto';
import * as pkcs11js from 'pkcs11js';
import { KmsError } from '../errors';
import type { KeySpec, KeyUsageType } from '../model/generated/types';
import { EC_FIELD_BYTES, EC_PARAMS, ecdhMechanism, ecdhResultTemplate, familyOf, namingAttributes, type ObjectNaming } from './key-templates';
import { ckrName } from './pkcs11-errors';
import { spkiOf } from './public-keys';
import { oaepDecode, type OaepHash } from './rsa-oaep';
import type { ObjectHandle, Session, Token } from './token';
import { creationIdAttribute, listTokenObjects, retryingCreation } from './token-objects';

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
  const match = /^p11kms-import:([0-9a-f-]{36}|mrk-[0-9a-f]{32}):([0-9a-f]{32})$/.exec(label);
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
    // The wrapping id is random and never reused: it is the pair's creation id.
    const common: pkcs11js.Template = [{ type: pkcs11js.CKA_TOKEN, value: true }, ...namingAttributes({ label: wrappingLabel(ref), id: creationIdAttribute(ref.wrappingId) })];
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
    }, retryingCreation(this.token, ref.wrappingId));
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
      for (const { label } of listTokenObjects(this.token, session)) {
        const ref = parseWrappingLabel(label);
        if (ref) refs.set(label, ref);
      }
      return [...refs.values()];
    });
  }

  /**
   * Unwraps imported material into a sensitive session object, has the token compute its
   * key check value, and asks `decide` what to do: a naming makes it a new token object so
   * named (always a new one: its creation id is its own), undefined discards it. Returns the
   * check value and whether a token object was created.
   */
  async importMaterial(
    request: ImportMaterialRequest,
    decide: (checkValue: string) => ObjectNaming | undefined,
  ): Promise<{ checkValue: string; created: boolean }> {
    const family = familyOf(request.spec);
    if (family === 'rsa' || family === 'ec') return this.importPrivateKey(request, family, decide);
    if (family !== 'aes' && family !== 'hmac') {
      throw new KmsError('UnsupportedOperationException', `p11kms cannot import ${request.spec} key material.`);
    }
    return this.token.run('import key material', async (session) => {
      const secret = await this.unwrapToSession(session, request, this.targetTemplate(family));
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
        const naming = decide(checkValue);
        let created = false;
        if (naming !== undefined) {
          this.token.pkcs11.C_CopyObject(session, secret, [
            { type: pkcs11js.CKA_TOKEN, value: true },
            { type: pkcs11js.CKA_PRIVATE, value: true },
            ...namingAttributes(naming),
            { type: pkcs11js.CKA_EXTRACTABLE, value: false },
            { type: pkcs11js.CKA_MODIFIABLE, value: this.token.copiesKeys },
          ]);
          created = true;
        }
        return { checkValue, created };
      } finally {
        this.token.pkcs11.C_DestroyObject(session, secret);
      }
        }, retryingCreation(this.token, request.creationId));
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
      const wrapped = p.C_WrapKey(session, { mechanism: this.token.rfc5649 }, probe, secret, Buffer.alloc(1024));
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
    template: pkcs11js.Template,
  ): Promise<ObjectHandle> {
    const p = this.token.pkcs11;
    const label = wrappingLabel(request.wrapping);
    const privateKey = this.token.findObject(session, label, pkcs11js.CKO_PRIVATE_KEY);
    if (!privateKey) throw new KmsError('InvalidImportTokenException', 'Import token is invalid or expired.', { internalDetail: `no wrapping key ${label}` });
    const modulusBytes = Number(request.wrappingKeySpec.slice('RSA_'.length)) / 8;
    const privateTarget = template.some((a) => a.type === pkcs11js.CKA_CLASS && a.value === pkcs11js.CKO_PRIVATE_KEY);
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
          if (privateTarget) return await this.unwrapPkcs8FromMemory(session, material, template);
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
        return await p.C_UnwrapKeyAsync(session, { mechanism: this.token.rfc5649 }, ephemeral, wrappedMaterial, template);
      } finally {
        p.C_DestroyObject(session, ephemeral);
      }
    } catch (err) {
      if (err instanceof KmsError) throw err;
      const name = ckrName(err) ?? '';
      if (UNWRAP_FAILURES.has(name)) throw invalidCiphertext();
      // SoftHSM2 answers CKR_FUNCTION_FAILED when the unwrapped bytes are not a PKCS#8 key of the template's type.
      if (privateTarget && name === 'CKR_FUNCTION_FAILED') throw notPrivateKey();
      throw err;
    }
  }

  /**
   * RSAES_OAEP_SHA_256 of an EC private key on a token without OAEP-SHA-256: the PKCS#8 was
   * decoded in process memory. It is wrapped here (AES-KWP) under a random one-time AES key,
   * that key is put into the token and the PKCS#8 unwrapped there, so the token itself parses
   * it; the one-time key and every copy are zeroed before this returns.
   */
  private async unwrapPkcs8FromMemory(session: Session, pkcs8: Buffer, template: pkcs11js.Template): Promise<ObjectHandle> {
    const p = this.token.pkcs11;
    const oneTime = randomBytes(32);
    let wrapped: Buffer | undefined;
    let key: ObjectHandle | undefined;
    try {
      const cipher = createCipheriv('id-aes256-wrap-pad', oneTime, Buffer.from('a65959a6', 'hex'));
      wrapped = Buffer.concat([cipher.update(pkcs8), cipher.final()]);
      key = p.C_CreateObject(session, [
        { type: pkcs11js.CKA_CLASS, value: pkcs11js.CKO_SECRET_KEY },
        { type: pkcs11js.CKA_KEY_TYPE, value: pkcs11js.CKK_AES },
        { type: pkcs11js.CKA_TOKEN, value: false },
        { type: pkcs11js.CKA_SENSITIVE, value: true },
        { type: pkcs11js.CKA_EXTRACTABLE, value: false },
        { type: pkcs11js.CKA_UNWRAP, value: true },
        { type: pkcs11js.CKA_VALUE, value: oneTime },
      ]);
      oneTime.fill(0);
      return p.C_UnwrapKey(session, { mechanism: this.token.rfc5649 }, key, wrapped, template);
    } finally {
      oneTime.fill(0);
      wrapped?.fill(0);
      if (key) p.C_DestroyObject(session, key);
    }
  }

  /**
   * An RSA or EC private key: unwrapped (PKCS#8) into a sensitive, never-extractable session
   * object; its public key is computed from the token (RSA: CKA_MODULUS and
   * CKA_PUBLIC_EXPONENT; EC: see ecPublicPoint) and checked against the private key with a
   * signature made in the token. The check value is the SHA-256 of the public key's SPKI
   * (public, so re-import compares public keys). An accepted key becomes a token private-key
   * object (C_CopyObject, usage attributes narrowed to the KMS key's usage) and a token
   * public-key object (C_CreateObject), both with the material label.
   */
  private async importPrivateKey(request: ImportMaterialRequest, family: 'rsa' | 'ec', decide: (checkValue: string) => ObjectNaming | undefined): Promise<{ checkValue: string; created: boolean }> {
    checkAsymmetricWrapping(request.spec, request.algorithm, request.wrappingKeySpec);
    const p = this.token.pkcs11;
    const rsa = family === 'rsa';
    return this.token.run('import private key', async (session) => {
      const privateKey = await this.unwrapToSession(session, request, [
        { type: pkcs11js.CKA_CLASS, value: pkcs11js.CKO_PRIVATE_KEY },
        { type: pkcs11js.CKA_KEY_TYPE, value: rsa ? pkcs11js.CKK_RSA : pkcs11js.CKK_EC },
        { type: pkcs11js.CKA_TOKEN, value: false },
        { type: pkcs11js.CKA_PRIVATE, value: true },
        { type: pkcs11js.CKA_SENSITIVE, value: true },
        { type: pkcs11js.CKA_EXTRACTABLE, value: false },
        // Wide on the session object for the checks below; narrowed before the token copy.
        { type: pkcs11js.CKA_SIGN, value: true },
        { type: pkcs11js.CKA_DECRYPT, value: false },
        { type: pkcs11js.CKA_DERIVE, value: !rsa },
        { type: pkcs11js.CKA_UNWRAP, value: false },
      ]);
      try {
        let publicTemplate: pkcs11js.Template;
        let spki: Buffer;
        if (rsa) {
          const [n, e] = p.C_GetAttributeValue(session, privateKey, [{ type: pkcs11js.CKA_MODULUS }, { type: pkcs11js.CKA_PUBLIC_EXPONENT }]);
          const modulus = stripZeros(n.value as Buffer);
          if (modulus.length * 8 !== Number(request.spec.slice('RSA_'.length))) throw notPrivateKey(request.spec);
          spki = spkiOf(request.spec, { family: 'rsa', modulus, exponent: e.value as Buffer });
          publicTemplate = [
            { type: pkcs11js.CKA_KEY_TYPE, value: pkcs11js.CKK_RSA },
            { type: pkcs11js.CKA_MODULUS, value: modulus },
            { type: pkcs11js.CKA_PUBLIC_EXPONENT, value: e.value as Buffer },
            { type: pkcs11js.CKA_VERIFY, value: request.usage === 'SIGN_VERIFY' },
            { type: pkcs11js.CKA_ENCRYPT, value: request.usage === 'ENCRYPT_DECRYPT' },
          ];
          if (!this.signatureMatches(session, privateKey, spki, 'rsa')) throw notPrivateKey(request.spec);
        } else {
          const [params] = p.C_GetAttributeValue(session, privateKey, [{ type: pkcs11js.CKA_EC_PARAMS }]);
          if (!(params.value as Buffer).equals(EC_PARAMS[request.spec])) throw notPrivateKey(request.spec);
          const point = this.ecPublicPoint(session, privateKey, request.spec);
          spki = spkiOf(request.spec, { family: 'ec', point });
          publicTemplate = [
            { type: pkcs11js.CKA_KEY_TYPE, value: pkcs11js.CKK_EC },
            { type: pkcs11js.CKA_EC_PARAMS, value: EC_PARAMS[request.spec] },
            { type: pkcs11js.CKA_EC_POINT, value: derOctetString(point) },
            { type: pkcs11js.CKA_VERIFY, value: request.usage === 'SIGN_VERIFY' },
          ];
        }
        const checkValue = createHash('sha256').update(spki).digest('hex');
        const naming = decide(checkValue);
        let created = false;
        if (naming !== undefined) {
          p.C_SetAttributeValue(session, privateKey, [
            { type: pkcs11js.CKA_SIGN, value: request.usage === 'SIGN_VERIFY' },
            ...(rsa ? [{ type: pkcs11js.CKA_DECRYPT, value: request.usage === 'ENCRYPT_DECRYPT' }] : [{ type: pkcs11js.CKA_DERIVE, value: request.usage === 'KEY_AGREEMENT' }]),
          ]);
          const named: pkcs11js.Template = [{ type: pkcs11js.CKA_TOKEN, value: true }, ...namingAttributes(naming), { type: pkcs11js.CKA_MODIFIABLE, value: this.token.copiesKeys }];
          // CKA_PRIVATE is already true on the session object; SoftHSM2 refuses it in a private key's copy template.
          const tokenPrivate = p.C_CopyObject(session, privateKey, named);
          try {
            p.C_CreateObject(session, [{ type: pkcs11js.CKA_CLASS, value: pkcs11js.CKO_PUBLIC_KEY }, ...named, { type: pkcs11js.CKA_PRIVATE, value: false }, ...publicTemplate]);
          } catch (err) {
            p.C_DestroyObject(session, tokenPrivate);
            throw err;
          }
          created = true;
        }
        return { checkValue, created };
      } finally {
        p.C_DestroyObject(session, privateKey);
      }
        }, retryingCreation(this.token, request.creationId));
  }

  /**
   * The public point of an EC private key that never leaves the token. SoftHSM2 keeps no
   * CKA_EC_POINT on an unwrapped private key (the PKCS#8's optional public key is dropped),
   * so the token computes it: ECDH (CKD_NULL) of the private key with the curve's generator G
   * gives x(d·G), the x-coordinate of the public key, which is public. Of the two points with
   * that x, the one a token-made ECDSA signature verifies under is the public key.
   */
  private ecPublicPoint(session: Session, privateKey: ObjectHandle, spec: KeySpec): Buffer {
    const p = this.token.pkcs11;
    const curve = NODE_CURVE[spec];
    const fieldBytes = EC_FIELD_BYTES[spec];
    const generator = generatorOf(curve, fieldBytes);
    // x(d·G) is the public key's x-coordinate, not a secret.
    const derived = p.C_DeriveKey(session, ecdhMechanism(generator), privateKey, ecdhResultTemplate(spec));
    let x: Buffer;
    try {
      [{ value: x }] = p.C_GetAttributeValue(session, derived, [{ type: pkcs11js.CKA_VALUE }]) as Array<{ value: Buffer }>;
    } finally {
      p.C_DestroyObject(session, derived);
    }
    for (const prefix of [0x02, 0x03]) {
      let point: Buffer;
      try {
        point = ECDH.convertKey(Buffer.concat([Buffer.from([prefix]), x]), curve, undefined, undefined, 'uncompressed') as Buffer;
      } catch {
        continue;
      }
      if (this.signatureMatches(session, privateKey, spkiOf(spec, { family: 'ec', point }), 'ec')) return point;
    }
    throw notPrivateKey(spec);
  }

  /** Signs a fixed message with the private key in the token and verifies it with `spki` here. */
  private signatureMatches(session: Session, privateKey: ObjectHandle, spki: Buffer, family: 'rsa' | 'ec'): boolean {
    const p = this.token.pkcs11;
    const publicKey = createPublicKey({ key: spki, format: 'der', type: 'spki' });
    if (family === 'rsa') {
      p.C_SignInit(session, { mechanism: pkcs11js.CKM_SHA256_RSA_PKCS }, privateKey);
      const signature = p.C_Sign(session, PAIRWISE_MESSAGE, Buffer.alloc(1024));
      return cryptoVerify('sha256', PAIRWISE_MESSAGE, { key: publicKey, padding: cryptoConstants.RSA_PKCS1_PADDING }, signature);
    }
    p.C_SignInit(session, { mechanism: pkcs11js.CKM_ECDSA }, privateKey);
    const signature = p.C_Sign(session, createHash('sha256').update(PAIRWISE_MESSAGE).digest(), Buffer.alloc(256));
    return cryptoVerify('sha256', PAIRWISE_MESSAGE, { key: publicKey, dsaEncoding: 'ieee-p1363' }, signature);
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

export interface ImportMaterialRequest {
  /** Written into CKA_ID of the objects an accepted import makes (see token-objects.ts). */
  creationId: string;
  wrapping: WrappingRef;
  algorithm: WrappingAlgorithm;
  wrappingKeySpec: WrappingKeySpec;
  encrypted: Buffer;
  spec: KeySpec;
  usage: KeyUsageType;
}

/** A fixed, public message for the token-made signature that ties a private key to its public key. */
const PAIRWISE_MESSAGE = Buffer.from('p11kms imported key pair check v1', 'utf8');

const NODE_CURVE: Record<string, string> = { ECC_NIST_P256: 'prime256v1', ECC_NIST_P384: 'secp384r1', ECC_NIST_P521: 'secp521r1', ECC_SECG_P256K1: 'secp256k1' };

/** The curve's generator point G (uncompressed): the public key of the scalar 1. */
function generatorOf(curve: string, fieldBytes: number): Buffer {
  const ecdh = createECDH(curve);
  const one = Buffer.alloc(fieldBytes);
  one[fieldBytes - 1] = 1;
  ecdh.setPrivateKey(one);
  return ecdh.getPublicKey();
}

/**
 * Which wrapping algorithms AWS allows for private keys (GetParametersForImport's
 * WrappingAlgorithm documentation): RSA private keys only with RSA_AES_KEY_WRAP_*; ECC private
 * keys also with RSAES_OAEP_*, except ECC_NIST_P521 under an RSA_2048 wrapping key (too long
 * for one OAEP block); RSAES_PKCS1_V1_5 never.
 */
export function checkAsymmetricWrapping(spec: KeySpec, algorithm: WrappingAlgorithm, wrappingKeySpec: WrappingKeySpec): void {
  const family = familyOf(spec);
  if (family !== 'rsa' && family !== 'ec') return;
  const hybrid = algorithm === 'RSA_AES_KEY_WRAP_SHA_1' || algorithm === 'RSA_AES_KEY_WRAP_SHA_256';
  const oaepOnly = algorithm === 'RSAES_OAEP_SHA_1' || algorithm === 'RSAES_OAEP_SHA_256';
  const allowed = hybrid || (family === 'ec' && oaepOnly && !(spec === 'ECC_NIST_P521' && wrappingKeySpec === 'RSA_2048'));
  if (!allowed) {
    throw new KmsError(
      'ValidationException',
      family === 'rsa'
        ? `The wrapping algorithm ${algorithm} is not supported for ${spec} key material. RSA private keys must be wrapped with RSA_AES_KEY_WRAP_SHA_1 or RSA_AES_KEY_WRAP_SHA_256.`
        : `The wrapping algorithm ${algorithm} with wrapping key spec ${wrappingKeySpec} is not supported for ${spec} key material.`,
    );
  }
}

function stripZeros(value: Buffer): Buffer {
  let i = 0;
  while (i < value.length - 1 && value[i] === 0) i++;
  return value.subarray(i);
}

/** DER OCTET STRING around an EC point, as CKA_EC_POINT holds it. */
function derOctetString(point: Buffer): Buffer {
  const length = point.length < 0x80 ? Buffer.from([point.length]) : Buffer.from([0x81, point.length]);
  return Buffer.concat([Buffer.from([0x04]), length, point]);
}

function notPrivateKey(spec?: KeySpec): KmsError {
  return new KmsError('ValidationException', spec ? `The key material is not a valid PKCS#8 private key for key spec ${spec}.` : 'The key material is not a valid PKCS#8 private key of the KMS key\'s type.');
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
