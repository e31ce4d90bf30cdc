import { constants as cryptoConstants, createECDH, createHash, createPublicKey, ECDH, verify as cryptoVerify } from 'node:crypto';
import * as pkcs11js from 'pkcs11js';
import type { KeySpec } from '../model/generated/types';
import { notPrivateKey, unwrapToSession } from './import-unwrap';
import { checkAsymmetricWrapping, type ImportMaterialRequest } from './import-wrapping';
import { EC_FIELD_BYTES, EC_PARAMS, ecdhMechanism, ecdhResultTemplate, namingAttributes, type ObjectNaming, SESSION_ONLY } from './key-templates';
import { spkiOf } from './public-keys';
import type { ObjectHandle, Session, Token } from './token';
import { retryingCreation } from './token-objects';

/**
 * An RSA or EC private key: unwrapped (PKCS#8) into a sensitive, never-extractable session
 * object; its public key is computed from the token (RSA: CKA_MODULUS and
 * CKA_PUBLIC_EXPONENT; EC: see ecPublicPoint) and checked against the private key with a
 * signature made in the token. The check value is the SHA-256 of the public key's SPKI
 * (public, so re-import compares public keys). An accepted key becomes a token private-key
 * object (C_CopyObject, usage attributes narrowed to the KMS key's usage) and a token
 * public-key object (C_CreateObject), both with the material label.
 */
export async function importPrivateKey(token: Token, request: ImportMaterialRequest, family: 'rsa' | 'ec', decide: (checkValue: string) => ObjectNaming | undefined): Promise<{ checkValue: string; created: boolean }> {
  checkAsymmetricWrapping(request.spec, request.algorithm, request.wrappingKeySpec);
  const p = token.pkcs11;
  const rsa = family === 'rsa';
  return token.run('import private key', async (session) => {
    const privateKey = await unwrapToSession(token, session, request, [
      { type: pkcs11js.CKA_CLASS, value: pkcs11js.CKO_PRIVATE_KEY },
      { type: pkcs11js.CKA_KEY_TYPE, value: rsa ? pkcs11js.CKK_RSA : pkcs11js.CKK_EC },
      ...SESSION_ONLY,
      { type: pkcs11js.CKA_PRIVATE, value: true },
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
        if (!signatureMatches(token, session, privateKey, spki, 'rsa')) throw notPrivateKey(request.spec);
      } else {
        const [params] = p.C_GetAttributeValue(session, privateKey, [{ type: pkcs11js.CKA_EC_PARAMS }]);
        if (!(params.value as Buffer).equals(EC_PARAMS[request.spec])) throw notPrivateKey(request.spec);
        const point = ecPublicPoint(token, session, privateKey, request.spec);
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
        const named: pkcs11js.Template = [{ type: pkcs11js.CKA_TOKEN, value: true }, ...namingAttributes(naming), { type: pkcs11js.CKA_MODIFIABLE, value: token.copiesKeys }];
        // CKA_PRIVATE is already true on the session object; SoftHSM2 refuses it in a private key's copy template.
        const { tokenPrivate, tokenPublic } = await token.creatingOnLoop(() => {
          const tokenPrivate = p.C_CopyObject(session, privateKey, named);
          try {
            const tokenPublic: ObjectHandle = p.C_CreateObject(session, [{ type: pkcs11js.CKA_CLASS, value: pkcs11js.CKO_PUBLIC_KEY }, ...named, { type: pkcs11js.CKA_PRIVATE, value: false }, ...publicTemplate]);
            return { tokenPrivate, tokenPublic };
          } catch (err) {
            p.C_DestroyObject(session, tokenPrivate);
            throw err;
          }
        });
        // As secret-import.ts: kept like a generated pair's handles, so the first use searches nothing.
        token.lookup.created(request.creationId, pkcs11js.CKO_PRIVATE_KEY, tokenPrivate);
        token.lookup.created(request.creationId, pkcs11js.CKO_PUBLIC_KEY, tokenPublic);
        created = true;
      }
      return { checkValue, created };
    } finally {
      p.C_DestroyObject(session, privateKey);
    }
  }, retryingCreation(token, request.creationId));
}

/**
 * The public point of an EC private key that never leaves the token. SoftHSM2 keeps no
 * CKA_EC_POINT on an unwrapped private key (the PKCS#8's optional public key is dropped),
 * so the token computes it: ECDH (CKD_NULL) of the private key with the curve's generator G
 * gives x(d·G), the x-coordinate of the public key, which is public. Of the two points with
 * that x, the one a token-made ECDSA signature verifies under is the public key.
 */
function ecPublicPoint(token: Token, session: Session, privateKey: ObjectHandle, spec: KeySpec): Buffer {
  const p = token.pkcs11;
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
    if (signatureMatches(token, session, privateKey, spkiOf(spec, { family: 'ec', point }), 'ec')) return point;
  }
  throw notPrivateKey(spec);
}

/** Signs a fixed message with the private key in the token and verifies it with `spki` here. */
function signatureMatches(token: Token, session: Session, privateKey: ObjectHandle, spki: Buffer, family: 'rsa' | 'ec'): boolean {
  const p = token.pkcs11;
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
