import * as pkcs11js from 'pkcs11js';
import { KmsError } from '../errors';
import type { KeySpec } from '../model/generated/types';
import { unwrapToSession } from './import-unwrap';
import type { ImportMaterialRequest } from './import-wrapping';
import { familyOf, HMAC_MECHANISM, namingAttributes, type ObjectNaming, SESSION_ONLY } from './key-templates';
import { ckrName } from './pkcs11-errors';
import type { ObjectHandle, Session, Token } from './token';
import { retryingCreation } from './token-objects';

/** Fixed inputs of the key check values (public constants; the value proves the key, not the input). */
const KCV_BLOCK = Buffer.alloc(16);
const KCV_MESSAGE = Buffer.from('p11kms key check value v1', 'utf8');

/** Largest HMAC key AWS accepts per spec (the smallest is the hash length, which the token enforces). */
const HMAC_MAX_BYTES: Record<string, number> = { HMAC_224: 64, HMAC_256: 64, HMAC_384: 128, HMAC_512: 128 };

/** AES and HMAC material (see KeyImporter.importMaterial); the token computes the check value from the secret itself. */
export async function importSecret(
  token: Token,
  request: ImportMaterialRequest,
  family: 'aes' | 'hmac',
  decide: (checkValue: string) => ObjectNaming | undefined,
): Promise<{ checkValue: string; created: boolean }> {
  return token.run('import key material', async (session) => {
    const secret = await unwrapToSession(token, session, request, targetTemplate(family));
    try {
      const valueLength = lengthOf(token, session, secret);
      if (valueLength === undefined || (family === 'aes' ? valueLength !== 32 : valueLength > HMAC_MAX_BYTES[request.spec])) throw wrongLength(request.spec);
      let checkValue: string;
      try {
        checkValue = checkValueOf(token, session, secret, request.spec);
      } catch (err) {
        if (REFUSED_LENGTHS.has(ckrName(err) ?? '')) throw wrongLength(request.spec);
        throw err;
      }
      const naming = decide(checkValue);
      let created = false;
      if (naming !== undefined) {
        const copy = await token.creatingOnLoop(() =>
          token.pkcs11.C_CopyObject(session, secret, [
            { type: pkcs11js.CKA_TOKEN, value: true },
            { type: pkcs11js.CKA_PRIVATE, value: true },
            ...namingAttributes(naming),
            { type: pkcs11js.CKA_EXTRACTABLE, value: false },
            { type: pkcs11js.CKA_MODIFIABLE, value: token.copiesKeys },
          ]),
        );
        // Kept like a generated key's handle, so the first use searches nothing; recorded
        // while the session is held, so a module re-initialisation (which drops every cached
        // handle) cannot come between the copy and the record.
        token.lookup.created(request.creationId, pkcs11js.CKO_SECRET_KEY, copy);
        created = true;
      }
      return { checkValue, created };
    } finally {
      token.pkcs11.C_DestroyObject(session, secret);
    }
  }, retryingCreation(token, request.creationId));
}

/**
 * What SoftHSM2 answers when asked to use a secret of a length no key of its type has: an
 * empty one cannot be wrapped for the length probe (CKR_KEY_NOT_WRAPPABLE); a 31-byte AES key,
 * which the probe rounds up to 32, cannot make its check value (CKR_MECHANISM_INVALID).
 */
const REFUSED_LENGTHS = new Set(['CKR_KEY_NOT_WRAPPABLE', 'CKR_KEY_SIZE_RANGE', 'CKR_MECHANISM_INVALID']);

/**
 * The length of a session secret (undefined: no usable length), found inside the token (SoftHSM2 leaves CKA_VALUE_LEN at 0
 * on unwrapped keys): it is wrapped with AES-KWP under a random session key that is
 * destroyed at once, and the wrapped length gives the value length rounded up to 8 bytes.
 * This is why the session object is extractable; its token copy is not.
 */
function lengthOf(token: Token, session: Session, secret: ObjectHandle): number | undefined {
  const p = token.pkcs11;
  const probe = p.C_GenerateKey(session, { mechanism: pkcs11js.CKM_AES_KEY_GEN }, [
    { type: pkcs11js.CKA_CLASS, value: pkcs11js.CKO_SECRET_KEY },
    { type: pkcs11js.CKA_KEY_TYPE, value: pkcs11js.CKK_AES },
    { type: pkcs11js.CKA_VALUE_LEN, value: 32 },
    ...SESSION_ONLY,
    { type: pkcs11js.CKA_WRAP, value: true },
  ]);
  try {
    const wrapped = p.C_WrapKey(session, { mechanism: token.rfc5649 }, probe, secret, Buffer.alloc(1024));
    return wrapped.length - 8;
  } catch (err) {
    // The same wrap succeeds for every secret of a usable length: a refusal is the material's.
    if (REFUSED_LENGTHS.has(ckrName(err) ?? '')) return undefined;
    throw err;
  } finally {
    p.C_DestroyObject(session, probe);
  }
}

export function checkValueOf(token: Token, session: Session, key: ObjectHandle, spec: KeySpec): string {
  const p = token.pkcs11;
  if (familyOf(spec) === 'aes') {
    p.C_EncryptInit(session, { mechanism: pkcs11js.CKM_AES_ECB }, key);
    return p.C_Encrypt(session, KCV_BLOCK, Buffer.alloc(16)).toString('hex');
  }
  p.C_SignInit(session, { mechanism: HMAC_MECHANISM[spec] }, key);
  return p.C_Sign(session, KCV_MESSAGE, Buffer.alloc(64)).toString('hex');
}

function targetTemplate(family: 'aes' | 'hmac'): pkcs11js.Template {
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

function wrongLength(spec: KeySpec): KmsError {
  return new KmsError('ValidationException', `The key material is not of a length key spec ${spec} accepts.`);
}
