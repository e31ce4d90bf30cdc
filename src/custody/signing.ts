import { createHash } from 'node:crypto';
import * as pkcs11js from 'pkcs11js';
import type { KeySpec, MessageType, SigningAlgorithmSpec } from '../model/generated/types';
import { incompatibleAlgorithm, KmsError } from '../errors';
import { CKM_EDDSA } from './key-templates';

type Hash = 'sha256' | 'sha384' | 'sha512';

const HASH_OF: Record<string, Hash> = { SHA_256: 'sha256', SHA_384: 'sha384', SHA_512: 'sha512' };
const DIGEST_BYTES: Record<Hash, number> = { sha256: 32, sha384: 48, sha512: 64 };
const PKCS11_HASH: Record<Hash, { mech: number; mgf: number }> = {
  sha256: { mech: pkcs11js.CKM_SHA256, mgf: pkcs11js.CKG_MGF1_SHA256 },
  sha384: { mech: pkcs11js.CKM_SHA384, mgf: pkcs11js.CKG_MGF1_SHA384 },
  sha512: { mech: pkcs11js.CKM_SHA512, mgf: pkcs11js.CKG_MGF1_SHA512 },
};
/** DER DigestInfo prefixes (RFC 8017 §9.2 note 1) for raw CKM_RSA_PKCS signatures. */
const DIGEST_INFO: Record<Hash, Buffer> = {
  sha256: Buffer.from('3031300d060960864801650304020105000420', 'hex'),
  sha384: Buffer.from('3041300d060960864801650304020205000430', 'hex'),
  sha512: Buffer.from('3051300d060960864801650304020305000440', 'hex'),
};

/** Signing algorithms AWS offers for each key spec (KeyMetadata.SigningAlgorithms), in AWS's order (the model's DescribeKey example). */
export function signingAlgorithmsFor(spec: KeySpec): SigningAlgorithmSpec[] {
  if (spec.startsWith('RSA_')) {
    return ['RSASSA_PKCS1_V1_5_SHA_256', 'RSASSA_PKCS1_V1_5_SHA_384', 'RSASSA_PKCS1_V1_5_SHA_512', 'RSASSA_PSS_SHA_256', 'RSASSA_PSS_SHA_384', 'RSASSA_PSS_SHA_512'];
  }
  switch (spec) {
    case 'ECC_NIST_P256':
    case 'ECC_SECG_P256K1':
      return ['ECDSA_SHA_256'];
    case 'ECC_NIST_P384':
      return ['ECDSA_SHA_384'];
    case 'ECC_NIST_P521':
      return ['ECDSA_SHA_512'];
    case 'ECC_NIST_EDWARDS25519':
      return ['ED25519_SHA_512', 'ED25519_PH_SHA_512'];
    default:
      return [];
  }
}

export interface SignaturePlan {
  mechanism: pkcs11js.Mechanism;
  /** What the token signs: a digest (or DigestInfo‖digest), or the message for pure EdDSA. */
  input: Buffer;
  /** ECDSA: the token speaks raw r‖s, AWS speaks DER. */
  ecdsa: boolean;
}

/**
 * How the token computes one AWS signing algorithm. Messages are hashed here and the
 * token signs the digest with the bare mechanism, so RAW and DIGEST messages share one
 * path per algorithm and DIGEST input is exactly what AWS documents.
 */
export function signaturePlan(spec: KeySpec, algorithm: SigningAlgorithmSpec, messageType: MessageType, message: Buffer): SignaturePlan {
  if (!signingAlgorithmsFor(spec).includes(algorithm)) {
    throw incompatibleAlgorithm(algorithm, spec);
  }
  if (messageType === 'EXTERNAL_MU') {
    // μ is ML-DSA's message representative (FIPS 204 §6.2); no other algorithm has one.
    throw new KmsError('ValidationException', `MessageType EXTERNAL_MU is valid only with ML-DSA signing algorithms, not ${algorithm}.`);
  }
  if (algorithm === 'ED25519_SHA_512') {
    if (messageType !== 'RAW') {
      throw new KmsError('ValidationException', 'ED25519_SHA_512 requires MessageType RAW. Use ED25519_PH_SHA_512 to sign a digest.');
    }
    return { mechanism: { mechanism: CKM_EDDSA }, input: message, ecdsa: false };
  }
  if (algorithm === 'ED25519_PH_SHA_512') {
    // A request AWS itself would refuse gets AWS's refusal, not "unsupported here" (model: PH requires DIGEST).
    if (messageType !== 'DIGEST') {
      throw new KmsError('ValidationException', 'ED25519_PH_SHA_512 requires MessageType DIGEST. Use ED25519_SHA_512 to sign a raw message.');
    }
    if (message.length !== DIGEST_BYTES.sha512) throw new KmsError('ValidationException', `Digest is invalid length for algorithm ${algorithm}.`);
    throw new KmsError(
      'UnsupportedOperationException',
      'ED25519_PH_SHA_512 (Ed25519ph) needs CKM_EDDSA with CK_EDDSA_PARAMS, which this PKCS#11 binding cannot pass; use ED25519_SHA_512.',
    );
  }
  const hash = HASH_OF[algorithm.slice(algorithm.lastIndexOf('SHA_'))];
  let digest: Buffer;
  if (messageType === 'DIGEST') {
    if (message.length !== DIGEST_BYTES[hash]) throw new KmsError('ValidationException', `Digest is invalid length for algorithm ${algorithm}.`);
    digest = message;
  } else {
    digest = createHash(hash).update(message).digest();
  }
  if (algorithm.startsWith('RSASSA_PSS_')) {
    const h = PKCS11_HASH[hash];
    return {
      mechanism: {
        mechanism: pkcs11js.CKM_RSA_PKCS_PSS,
        parameter: { type: pkcs11js.CK_PARAMS_RSA_PSS, hashAlg: h.mech, mgf: h.mgf, saltLen: DIGEST_BYTES[hash] } as pkcs11js.RsaPSS,
      },
      input: digest,
      ecdsa: false,
    };
  }
  if (algorithm.startsWith('RSASSA_PKCS1_V1_5_')) {
    return { mechanism: { mechanism: pkcs11js.CKM_RSA_PKCS }, input: Buffer.concat([DIGEST_INFO[hash], digest]), ecdsa: false };
  }
  return { mechanism: { mechanism: pkcs11js.CKM_ECDSA }, input: digest, ecdsa: true };
}

/** r‖s (each `size` bytes) → DER SEQUENCE { INTEGER r, INTEGER s }. */
export function ecdsaRawToDer(raw: Buffer): Buffer {
  const half = raw.length / 2;
  const integer = (bytes: Buffer) => {
    let i = 0;
    while (i < bytes.length - 1 && bytes[i] === 0) i++;
    let v = bytes.subarray(i);
    if (v[0] & 0x80) v = Buffer.concat([Buffer.from([0]), v]);
    return Buffer.concat([Buffer.from([0x02]), derLength(v.length), v]);
  };
  const body = Buffer.concat([integer(raw.subarray(0, half)), integer(raw.subarray(half))]);
  return Buffer.concat([Buffer.from([0x30]), derLength(body.length), body]);
}

/**
 * DER ECDSA signature → r‖s padded to `size` bytes each; undefined when it is not the one DER
 * encoding of a positive (r, s). AWS specifies DER (ANSI X9.62, RFC 3279 §2.2.3), and OpenSSL and
 * BoringSSL refuse any other BER form of a valid signature (an INTEGER with a needless leading
 * zero, a negative INTEGER, a long-form length below 128): accepting those would verify
 * signatures AWS rejects, and make every signature malleable.
 */
export function ecdsaDerToRaw(der: Buffer, size: number): Buffer | undefined {
  let offset = 0;
  const readLength = (): number | undefined => {
    const first = der[offset++];
    if (first === undefined) return undefined;
    if (first < 0x80) return first;
    // Long form only for 128 and more (P-521 signatures), in as few octets as possible.
    if (first !== 0x81 || der[offset] === undefined || der[offset] < 0x80) return undefined;
    return der[offset++];
  };
  if (der[offset++] !== 0x30) return undefined;
  const seqLen = readLength();
  if (seqLen === undefined || offset + seqLen !== der.length) return undefined;
  const parts: Buffer[] = [];
  for (let k = 0; k < 2; k++) {
    if (der[offset++] !== 0x02) return undefined;
    const len = readLength();
    if (len === undefined || len === 0 || offset + len > der.length) return undefined;
    let v = der.subarray(offset, offset + len);
    offset += len;
    if (v[0] & 0x80) return undefined; // negative
    if (v.length > 1 && v[0] === 0 && !(v[1] & 0x80)) return undefined; // not minimal
    if (v[0] === 0 && v.length > 1) v = v.subarray(1);
    if (v.length > size) return undefined;
    parts.push(Buffer.concat([Buffer.alloc(size - v.length), v]));
  }
  return offset === der.length ? Buffer.concat(parts) : undefined;
}

function derLength(n: number): Buffer {
  if (n < 0x80) return Buffer.from([n]);
  if (n < 0x100) return Buffer.from([0x81, n]);
  return Buffer.from([0x82, n >> 8, n & 0xff]);
}

/** Reads a DER OCTET STRING (how tokens return CKA_EC_POINT) and returns its content. */
export function unwrapOctetString(der: Buffer): Buffer {
  if (der[0] !== 0x04) return der;
  let offset = 1;
  let len = der[offset++];
  if (len & 0x80) {
    const n = len & 0x7f;
    len = 0;
    for (let i = 0; i < n; i++) len = (len << 8) | der[offset++];
  }
  // A raw uncompressed point also starts with 0x04; only unwrap when the length fits exactly.
  return offset + len === der.length ? der.subarray(offset) : der;
}
