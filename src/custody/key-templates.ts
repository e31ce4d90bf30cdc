import * as pkcs11js from 'pkcs11js';
import type { KeySpec, KeyUsageType } from '../model/generated/types';
import type { OaepHash } from './rsa-oaep';

/** PKCS#11 v3 constants pkcs11js 2.1 does not export (values from the v3.0 headers). */
export const CKK_EC_EDWARDS = 0x40;
export const CKM_EC_EDWARDS_KEY_PAIR_GEN = 0x1055;
export const CKM_EDDSA = 0x1057;

/** DER-encoded curve OIDs for CKA_EC_PARAMS. */
export const EC_PARAMS: Record<string, Buffer> = {
  ECC_NIST_P256: Buffer.from('06082a8648ce3d030107', 'hex'),
  ECC_NIST_P384: Buffer.from('06052b81040022', 'hex'),
  ECC_NIST_P521: Buffer.from('06052b81040023', 'hex'),
  ECC_SECG_P256K1: Buffer.from('06052b8104000a', 'hex'),
  ECC_NIST_EDWARDS25519: Buffer.from('06032b6570', 'hex'),
};

/** Curve names as node:crypto's JWK `crv` spells them. */
export const JWK_CURVE: Record<string, string> = {
  ECC_NIST_P256: 'P-256',
  ECC_NIST_P384: 'P-384',
  ECC_NIST_P521: 'P-521',
  ECC_SECG_P256K1: 'secp256k1',
  ECC_NIST_EDWARDS25519: 'Ed25519',
};

/** Bytes of one coordinate per curve: an ECDSA r or s, an ECDH secret, half a raw point. */
export const EC_FIELD_BYTES: Record<string, number> = { ECC_NIST_P256: 32, ECC_SECG_P256K1: 32, ECC_NIST_P384: 48, ECC_NIST_P521: 66 };

/** ECDH with a peer's uncompressed point, no KDF: the raw x-coordinate of the shared point. */
export function ecdhMechanism(peerPoint: Buffer): pkcs11js.Mechanism {
  return {
    mechanism: pkcs11js.CKM_ECDH1_DERIVE,
    parameter: { type: pkcs11js.CK_PARAMS_EC_DH, kdf: pkcs11js.CKD_NULL, publicData: peerPoint } as pkcs11js.ECDH1,
  };
}

/**
 * Where an ECDH result lands: a readable session object, because the result is what the
 * caller receives (DeriveSharedSecret) or is public (x(d·G) when deriving a public key).
 */
export function ecdhResultTemplate(spec: KeySpec): pkcs11js.Template {
  return [
    { type: pkcs11js.CKA_CLASS, value: pkcs11js.CKO_SECRET_KEY },
    { type: pkcs11js.CKA_KEY_TYPE, value: pkcs11js.CKK_GENERIC_SECRET },
    { type: pkcs11js.CKA_TOKEN, value: false },
    { type: pkcs11js.CKA_SENSITIVE, value: false },
    { type: pkcs11js.CKA_EXTRACTABLE, value: true },
    { type: pkcs11js.CKA_VALUE_LEN, value: EC_FIELD_BYTES[spec] },
  ];
}

export const HMAC_KEY_BYTES: Record<string, number> = { HMAC_224: 28, HMAC_256: 32, HMAC_384: 48, HMAC_512: 64 };

/** Length of the MAC each HMAC key spec's mechanism produces (its hash's output). */
export const HMAC_MAC_BYTES: Record<string, number> = { HMAC_224: 28, HMAC_256: 32, HMAC_384: 48, HMAC_512: 64 };

export const HMAC_MECHANISM: Record<string, number> = {
  HMAC_224: pkcs11js.CKM_SHA224_HMAC,
  HMAC_256: pkcs11js.CKM_SHA256_HMAC,
  HMAC_384: pkcs11js.CKM_SHA384_HMAC,
  HMAC_512: pkcs11js.CKM_SHA512_HMAC,
};

export type KeyFamily = 'aes' | 'rsa' | 'ec' | 'edwards' | 'hmac';

export function familyOf(spec: KeySpec): KeyFamily {
  if (spec === 'SYMMETRIC_DEFAULT') return 'aes';
  if (spec.startsWith('RSA_')) return 'rsa';
  if (spec === 'ECC_NIST_EDWARDS25519') return 'edwards';
  if (spec.startsWith('ECC_')) return 'ec';
  if (spec.startsWith('HMAC_')) return 'hmac';
  throw new Error(`no PKCS#11 family for ${spec}`);
}

/** The mechanism each key spec needs to be generated, for the start-up capability probe. */
export function generationMechanism(spec: KeySpec): number | undefined {
  switch (spec) {
    case 'SM2':
    case 'ML_DSA_44':
    case 'ML_DSA_65':
    case 'ML_DSA_87':
      return undefined;
    default:
      break;
  }
  switch (familyOf(spec)) {
    case 'aes':
      return pkcs11js.CKM_AES_KEY_GEN;
    case 'rsa':
      return pkcs11js.CKM_RSA_PKCS_KEY_PAIR_GEN;
    case 'ec':
      return pkcs11js.CKM_EC_KEY_PAIR_GEN;
    case 'edwards':
      return CKM_EC_EDWARDS_KEY_PAIR_GEN;
    case 'hmac':
      return pkcs11js.CKM_GENERIC_SECRET_KEY_GEN;
  }
}

export interface PairTemplates {
  mechanism: number;
  publicTemplate: pkcs11js.Template;
  privateTemplate: pkcs11js.Template;
}

/**
 * Key pair templates built from the key's intended usage, so the token itself refuses any
 * other use (a SIGN_VERIFY RSA key has CKA_DECRYPT=false, and so on).
 * `persistent` keys are KMS keys; transient ones are data key pairs that are wrapped
 * under a KMS key and destroyed (they must be extractable for C_WrapKey).
 */
export function pairTemplates(spec: KeySpec, usage: KeyUsageType | 'DATA_KEY_PAIR', naming: ObjectNaming | undefined, persistent: boolean, copyable = false): PairTemplates {
  const family = familyOf(spec);
  const sign = usage === 'SIGN_VERIFY';
  const crypt = usage === 'ENCRYPT_DECRYPT';
  const agree = usage === 'KEY_AGREEMENT';
  const common = (extra: pkcs11js.Template): pkcs11js.Template => [
    { type: pkcs11js.CKA_TOKEN, value: persistent },
    ...(naming ? namingAttributes(naming) : []),
    ...extra,
  ];
  const privateTemplate = common([
    { type: pkcs11js.CKA_PRIVATE, value: true },
    { type: pkcs11js.CKA_SENSITIVE, value: true },
    { type: pkcs11js.CKA_EXTRACTABLE, value: !persistent },
    // Frozen like HELD_IN_TOKEN, unless the profile copies it into sessions (heldInToken).
    ...(persistent ? [{ type: pkcs11js.CKA_MODIFIABLE, value: copyable }] : []),
    { type: pkcs11js.CKA_SIGN, value: sign },
    ...(family === 'rsa' ? [{ type: pkcs11js.CKA_DECRYPT, value: crypt }] : []),
    ...(family === 'ec' ? [{ type: pkcs11js.CKA_DERIVE, value: agree }] : []),
  ]);
  if (family === 'rsa') {
    return {
      mechanism: pkcs11js.CKM_RSA_PKCS_KEY_PAIR_GEN,
      publicTemplate: common([
        { type: pkcs11js.CKA_MODULUS_BITS, value: Number(spec.slice('RSA_'.length)) },
        { type: pkcs11js.CKA_PUBLIC_EXPONENT, value: Buffer.from([1, 0, 1]) },
        { type: pkcs11js.CKA_VERIFY, value: sign },
        { type: pkcs11js.CKA_ENCRYPT, value: crypt },
      ]),
      privateTemplate,
    };
  }
  if (family === 'ec' || family === 'edwards') {
    return {
      mechanism: family === 'ec' ? pkcs11js.CKM_EC_KEY_PAIR_GEN : CKM_EC_EDWARDS_KEY_PAIR_GEN,
      publicTemplate: common([
        { type: pkcs11js.CKA_EC_PARAMS, value: EC_PARAMS[spec] },
        { type: pkcs11js.CKA_VERIFY, value: sign },
      ]),
      privateTemplate,
    };
  }
  throw new Error(`${spec} is not a key pair spec`);
}

/**
 * What keeps a session object's secret inside the token for the little it lives (a one-time
 * unwrapping key, a probe, an import's unwrapped key before its checks): gone with the
 * session, never readable or exportable.
 */
export const SESSION_ONLY: readonly pkcs11js.Attribute[] = [
  { type: pkcs11js.CKA_TOKEN, value: false },
  { type: pkcs11js.CKA_SENSITIVE, value: true },
  { type: pkcs11js.CKA_EXTRACTABLE, value: false },
];

/**
 * What keeps a persistent secret inside the token: stored on it, usable only after login,
 * never readable or exportable, and its attributes frozen so none of that can be undone.
 */
export const HELD_IN_TOKEN: readonly pkcs11js.Attribute[] = heldInToken(false);

/**
 * HELD_IN_TOKEN, or with CKA_MODIFIABLE true for a profile with `sessionCopies` (a token
 * copies only modifiable objects). PKCS#11 lets CKA_SENSITIVE only be set and CKA_EXTRACTABLE
 * only be cleared, so a modifiable key stays unreadable and unexportable (test/integration/custody.test.ts).
 */
export function heldInToken(copyable: boolean): readonly pkcs11js.Attribute[] {
  return [
    { type: pkcs11js.CKA_TOKEN, value: true },
    { type: pkcs11js.CKA_PRIVATE, value: true },
    { type: pkcs11js.CKA_SENSITIVE, value: true },
    { type: pkcs11js.CKA_EXTRACTABLE, value: false },
    { type: pkcs11js.CKA_MODIFIABLE, value: copyable },
  ];
}

/**
 * An AES-256 token key: sensitive, never extractable, encrypt/decrypt, and wrap/unwrap when
 * it protects other keys (master keys do; the secret-sealing key does not).
 */
export function aesKeyTemplate(naming: ObjectNaming | string, wrapping: boolean, held: readonly pkcs11js.Attribute[] = HELD_IN_TOKEN): pkcs11js.Template {
  const named = typeof naming === 'string' ? { label: naming, id: Buffer.from(naming) } : naming;
  return [
    { type: pkcs11js.CKA_CLASS, value: pkcs11js.CKO_SECRET_KEY },
    { type: pkcs11js.CKA_KEY_TYPE, value: pkcs11js.CKK_AES },
    { type: pkcs11js.CKA_VALUE_LEN, value: 32 },
    ...held,
    { type: pkcs11js.CKA_ENCRYPT, value: true },
    { type: pkcs11js.CKA_DECRYPT, value: true },
    { type: pkcs11js.CKA_WRAP, value: wrapping },
    { type: pkcs11js.CKA_UNWRAP, value: wrapping },
    { type: pkcs11js.CKA_SIGN, value: false },
    { type: pkcs11js.CKA_VERIFY, value: false },
    { type: pkcs11js.CKA_DERIVE, value: false },
    ...namingAttributes(named),
  ];
}

/** What names a token object: a label for people, a CKA_ID for p11kms (see token-objects.ts). */
export interface ObjectNaming {
  label: string;
  id: Buffer;
}

export function namingAttributes(naming: ObjectNaming): pkcs11js.Template {
  return [
    { type: pkcs11js.CKA_LABEL, value: naming.label },
    { type: pkcs11js.CKA_ID, value: naming.id },
  ];
}

/** An HMAC key: a generic secret of the hash's length, sign/verify only. */
export function hmacTemplate(spec: KeySpec, naming: ObjectNaming, held: readonly pkcs11js.Attribute[] = HELD_IN_TOKEN): pkcs11js.Template {
  return [
    { type: pkcs11js.CKA_CLASS, value: pkcs11js.CKO_SECRET_KEY },
    { type: pkcs11js.CKA_KEY_TYPE, value: pkcs11js.CKK_GENERIC_SECRET },
    { type: pkcs11js.CKA_VALUE_LEN, value: HMAC_KEY_BYTES[spec] },
    ...held,
    { type: pkcs11js.CKA_SIGN, value: true },
    { type: pkcs11js.CKA_VERIFY, value: true },
    ...namingAttributes(naming),
  ];
}

/** AES-GCM with a 128-bit tag. CK_PARAMS_GCM with ivBits: the AES_GCM variant leaves ulIvBits uninitialised. */
export function gcmMechanism(iv: Buffer, aad: Buffer): pkcs11js.Mechanism {
  return {
    mechanism: pkcs11js.CKM_AES_GCM,
    parameter: { type: pkcs11js.CK_PARAMS_GCM, iv, aad, ivBits: iv.length * 8, tagBits: 128 } as pkcs11js.GcmParams,
  };
}

/** OAEP label source (PKCS#11 v2.40 §2.1.8); pkcs11js does not export it. */
const CKZ_DATA_SPECIFIED = 1;

/** RSA-OAEP: MGF1 over the same hash, empty label. */
export function oaepMechanism(hash: OaepHash): pkcs11js.Mechanism {
  return {
    mechanism: pkcs11js.CKM_RSA_PKCS_OAEP,
    parameter: {
      type: pkcs11js.CK_PARAMS_RSA_OAEP,
      hashAlg: hash === 'sha1' ? pkcs11js.CKM_SHA_1 : pkcs11js.CKM_SHA256,
      mgf: hash === 'sha1' ? pkcs11js.CKG_MGF1_SHA1 : pkcs11js.CKG_MGF1_SHA256,
      source: CKZ_DATA_SPECIFIED,
    } as pkcs11js.RsaOAEP,
  };
}
