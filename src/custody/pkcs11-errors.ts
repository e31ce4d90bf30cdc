import { KmsError } from '../errors';

/**
 * The one place PKCS#11 return codes become KMS errors. The CKR name is logged by the
 * caller through `internalDetail`; clients only ever see the KMS error name and a
 * generic message.
 */

/** Return codes after which the session and login must be re-established. */
const SESSION_LOST = new Set(['CKR_SESSION_HANDLE_INVALID', 'CKR_SESSION_CLOSED', 'CKR_USER_NOT_LOGGED_IN']);

/** Return codes after which the module itself must be finalised and initialised again. */
const MODULE_BROKEN = new Set(['CKR_DEVICE_REMOVED', 'CKR_TOKEN_NOT_PRESENT', 'CKR_DEVICE_ERROR', 'CKR_CRYPTOKI_NOT_INITIALIZED']);

/**
 * Return codes SoftHSM2 2.6.1 gives transiently when one thread or process reads an object
 * file another has not finished writing (softhsm2-notes.md): C_GenerateKey → CKR_GENERAL_ERROR
 * or CKR_TEMPLATE_INCONSISTENT, C_DestroyObject → CKR_FUNCTION_FAILED. Tried again on a fresh
 * session first; if it happens again the module's view is broken and it is re-initialised.
 * (Failures these codes stand for in a single call, such as a GCM tag mismatch, are turned
 * into their KMS errors by the caller before they get here.)
 */
const TRANSIENT = new Set(['CKR_GENERAL_ERROR', 'CKR_FUNCTION_FAILED', 'CKR_TEMPLATE_INCONSISTENT']);

/** Return codes meaning the key object is gone or unusable: the key is unavailable. */
const KEY_UNAVAILABLE = new Set([
  'CKR_OBJECT_HANDLE_INVALID',
  'CKR_KEY_HANDLE_INVALID',
  'CKR_KEY_FUNCTION_NOT_PERMITTED',
  'CKR_KEY_TYPE_INCONSISTENT',
]);

/** The device is gone: the key store, not the request, is at fault (AWS: KeyUnavailableException, retryable). */
const DEVICE_GONE = new Set(['CKR_DEVICE_REMOVED', 'CKR_TOKEN_NOT_PRESENT']);

export type Recovery = 'none' | 'handles' | 'retry' | 'session' | 'module';

/** What the token must do before the failed call (the `attempt`-th run) may be tried again. */
export function recoveryFor(err: unknown, attempt: number): Recovery {
  const name = ckrName(err);
  if (name === undefined) return 'none';
  if (name === 'CKR_OBJECT_HANDLE_INVALID' || name === 'CKR_KEY_HANDLE_INVALID') return 'handles';
  if (SESSION_LOST.has(name)) return 'session';
  if (MODULE_BROKEN.has(name)) return 'module';
  if (TRANSIENT.has(name)) return attempt === 1 ? 'retry' : 'module';
  return 'none';
}

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

/** Maps any failure from a token call to the KMS error a client receives. */
export function toKmsError(err: unknown, what: string): KmsError {
  if (err instanceof KmsError) return err;
  const name = ckrName(err);
  const detail = `${what}: ${name ?? (err instanceof Error ? err.message : String(err))}`;
  if (name && (KEY_UNAVAILABLE.has(name) || DEVICE_GONE.has(name))) {
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
