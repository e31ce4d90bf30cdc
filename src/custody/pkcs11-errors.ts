import { KmsError } from '../errors';

/**
 * The one place PKCS#11 return codes become KMS errors. The CKR name is logged by the
 * caller through `internalDetail`; clients only ever see the KMS error name and a
 * generic message.
 */

/** Return codes after which the session (or the whole module) must be re-established. */
const SESSION_LOST = new Set([
  'CKR_SESSION_HANDLE_INVALID',
  'CKR_SESSION_CLOSED',
  'CKR_USER_NOT_LOGGED_IN',
  'CKR_DEVICE_REMOVED',
  'CKR_TOKEN_NOT_PRESENT',
  'CKR_DEVICE_ERROR',
  'CKR_CRYPTOKI_NOT_INITIALIZED',
]);

/** Return codes meaning the key object is gone or unusable: the key is unavailable. */
const KEY_UNAVAILABLE = new Set([
  'CKR_OBJECT_HANDLE_INVALID',
  'CKR_KEY_HANDLE_INVALID',
  'CKR_KEY_FUNCTION_NOT_PERMITTED',
  'CKR_KEY_TYPE_INCONSISTENT',
]);

const TIMEOUT = new Set(['CKR_FUNCTION_CANCELED', 'CKR_DEVICE_MEMORY', 'CKR_HOST_MEMORY']);

/** Reads the CKR name from a pkcs11js error (its message is the CKR name). */
export function ckrName(err: unknown): string | undefined {
  if (err && typeof err === 'object' && 'message' in err) {
    const msg = String((err as { message: unknown }).message);
    const match = /^(CKR_[A-Z_0-9]+)/.exec(msg);
    if (match) return match[1];
  }
  return undefined;
}

export function isSessionLost(err: unknown): boolean {
  const name = ckrName(err);
  return name !== undefined && SESSION_LOST.has(name);
}

export function isStaleHandle(err: unknown): boolean {
  const name = ckrName(err);
  return name === 'CKR_OBJECT_HANDLE_INVALID' || name === 'CKR_KEY_HANDLE_INVALID';
}

/**
 * SoftHSM2 2.6.1 under several processes: a process that read a half-written token file keeps
 * a broken view of the token (new keys fail, destroys fail) until the module is initialised
 * again (../shared/softhsm2-notes.md). Only these calls' failures mean that; the same codes
 * elsewhere (a GCM tag failure on decrypt) are ordinary errors.
 */
export function isBrokenView(err: unknown): boolean {
  const name = ckrName(err);
  const method = err && typeof err === 'object' && 'method' in err ? String((err as { method: unknown }).method) : '';
  if (name === 'CKR_GENERAL_ERROR') return /^C_(GenerateKey|GenerateKeyPair|GetTokenInfo|UnwrapKey|CreateObject)/.test(method);
  if (name === 'CKR_FUNCTION_FAILED') return /^C_DestroyObject/.test(method);
  return false;
}

/** Maps any failure from a token call to the KMS error a client receives. */
export function toKmsError(err: unknown, what: string): KmsError {
  if (err instanceof KmsError) return err;
  const name = ckrName(err);
  const detail = `${what}: ${name ?? (err instanceof Error ? err.message : String(err))}`;
  if (name && KEY_UNAVAILABLE.has(name)) {
    return new KmsError('KeyUnavailableException', 'The key material is not available in the key store.', {
      internalDetail: detail,
      cause: err,
    });
  }
  if (name && TIMEOUT.has(name)) {
    return new KmsError('DependencyTimeoutException', 'The key store did not respond in time.', {
      internalDetail: detail,
      cause: err,
    });
  }
  return new KmsError('KMSInternalException', 'An internal error occurred in the key store.', {
    internalDetail: detail,
    cause: err,
  });
}
