import { createCipheriv, randomBytes } from 'node:crypto';
import * as pkcs11js from 'pkcs11js';
import { KmsError } from '../errors';
import type { KeySpec } from '../model/generated/types';
import { importPath, type WrappingAlgorithm, type WrappingKeySpec, type WrappingRef, wrappingLabel } from './import-wrapping';
import { oaepMechanism, SESSION_ONLY } from './key-templates';
import { ckrName } from './pkcs11-errors';
import { oaepDecode, type OaepHash } from './rsa-oaep';
import type { ObjectHandle, Session, Token } from './token';

/** An AES key that lives for one import, in the session: it unwraps, and nothing else. */
const ONE_TIME_UNWRAPPING_KEY: pkcs11js.Template = [
  { type: pkcs11js.CKA_CLASS, value: pkcs11js.CKO_SECRET_KEY },
  { type: pkcs11js.CKA_KEY_TYPE, value: pkcs11js.CKK_AES },
  ...SESSION_ONLY,
  { type: pkcs11js.CKA_UNWRAP, value: true },
  { type: pkcs11js.CKA_ENCRYPT, value: false },
  { type: pkcs11js.CKA_DECRYPT, value: false },
];

/**
 * Unwraps imported material with its import's wrapping key into a session object made from
 * `template`. Whatever the wrapped bytes are, a failure is InvalidCiphertextException (or,
 * for a private key the token cannot parse, a ValidationException), never a token error.
 */
export async function unwrapToSession(
  token: Token,
  session: Session,
  request: { wrapping: WrappingRef; algorithm: WrappingAlgorithm; wrappingKeySpec: WrappingKeySpec; encrypted: Buffer },
  template: pkcs11js.Template,
): Promise<ObjectHandle> {
  const p = token.pkcs11;
  const label = wrappingLabel(request.wrapping);
  // By the pair's creation id (its handle is cached from generation or a listing); by label
  // for a pair made before wrapping pairs carried one.
  const privateKey = token.lookup.findCreation(session, request.wrapping.wrappingId, pkcs11js.CKO_PRIVATE_KEY) ?? token.lookup.findObject(session, label, pkcs11js.CKO_PRIVATE_KEY);
  if (!privateKey) throw new KmsError('InvalidImportTokenException', 'Import token is invalid or expired.', { internalDetail: `no wrapping key ${label}` });
  const modulusBytes = Number(request.wrappingKeySpec.slice('RSA_'.length)) / 8;
  const privateTarget = template.some((a) => a.type === pkcs11js.CKA_CLASS && a.value === pkcs11js.CKO_PRIVATE_KEY);
  const hash: OaepHash = request.algorithm.endsWith('SHA_256') ? 'sha256' : 'sha1';
  const inToken = importPath(request.algorithm, token.profile.quirks.oaepHashesInToken) === 'token';
  const { encrypted } = request;
  try {
    if (request.algorithm === 'RSAES_PKCS1_V1_5') {
      return await p.C_UnwrapKeyAsync(session, { mechanism: pkcs11js.CKM_RSA_PKCS }, privateKey, encrypted, template);
    }
    if (request.algorithm === 'RSAES_OAEP_SHA_1' || request.algorithm === 'RSAES_OAEP_SHA_256') {
      if (inToken) return await p.C_UnwrapKeyAsync(session, oaepMechanism(hash), privateKey, encrypted, template);
      // Raw RSA in the token, OAEP decoding here: the material is in process memory
      // from decoding until C_CreateObject returns, then zeroed (docs/key-custody.md).
      const material = rawOaepDecrypt(token, session, privateKey, encrypted, modulusBytes, hash);
      try {
        if (privateTarget) return await unwrapPkcs8FromMemory(token, session, material, template);
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
    let ephemeral: ObjectHandle;
    if (inToken) {
      ephemeral = await p.C_UnwrapKeyAsync(session, oaepMechanism(hash), privateKey, wrappedKey, ONE_TIME_UNWRAPPING_KEY);
    } else {
      // Only the ephemeral AES key passes through process memory here, never the material.
      const aesKey = rawOaepDecrypt(token, session, privateKey, wrappedKey, modulusBytes, hash);
      try {
        if (aesKey.length !== 32 && aesKey.length !== 24 && aesKey.length !== 16) throw invalidCiphertext();
        ephemeral = p.C_CreateObject(session, [...ONE_TIME_UNWRAPPING_KEY, { type: pkcs11js.CKA_VALUE, value: aesKey }]);
      } finally {
        aesKey.fill(0);
      }
    }
    try {
      return await p.C_UnwrapKeyAsync(session, { mechanism: token.rfc5649 }, ephemeral, wrappedMaterial, template);
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
async function unwrapPkcs8FromMemory(token: Token, session: Session, pkcs8: Buffer, template: pkcs11js.Template): Promise<ObjectHandle> {
  const p = token.pkcs11;
  const oneTime = randomBytes(32);
  let wrapped: Buffer | undefined;
  let key: ObjectHandle | undefined;
  try {
    const cipher = createCipheriv('id-aes256-wrap-pad', oneTime, Buffer.from('a65959a6', 'hex'));
    wrapped = Buffer.concat([cipher.update(pkcs8), cipher.final()]);
    key = p.C_CreateObject(session, [...ONE_TIME_UNWRAPPING_KEY, { type: pkcs11js.CKA_VALUE, value: oneTime }]);
    oneTime.fill(0);
    return p.C_UnwrapKey(session, { mechanism: token.rfc5649 }, key, wrapped, template);
  } finally {
    oneTime.fill(0);
    wrapped?.fill(0);
    if (key) p.C_DestroyObject(session, key);
  }
}

/** CKM_RSA_X_509 in the token, then constant-time OAEP decoding here; every failure is the same. */
function rawOaepDecrypt(token: Token, session: Session, privateKey: ObjectHandle, ciphertext: Buffer, modulusBytes: number, hash: OaepHash): Buffer {
  if (ciphertext.length !== modulusBytes) throw invalidCiphertext();
  const p = token.pkcs11;
  p.C_DecryptInit(session, { mechanism: pkcs11js.CKM_RSA_X_509 }, privateKey);
  const output = p.C_Decrypt(session, ciphertext, Buffer.alloc(modulusBytes));
  const block = Buffer.concat([Buffer.alloc(modulusBytes - output.length), output]);
  output.fill(0);
  const message = oaepDecode(block, hash);
  block.fill(0);
  if (!message) throw invalidCiphertext();
  return message;
}

export function notPrivateKey(spec?: KeySpec): KmsError {
  return new KmsError('ValidationException', spec ? `The key material is not a valid PKCS#8 private key for key spec ${spec}.` : 'The key material is not a valid PKCS#8 private key of the KMS key\'s type.');
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

function invalidCiphertext(): KmsError {
  return new KmsError('InvalidCiphertextException', 'The wrapped key material could not be unwrapped with the import parameters.');
}
