import type { ModelErrorName } from './model/generated/errors';
import type { KeyState } from './model/generated/types';

/**
 * Errors that are part of the AWS JSON protocol but not listed in the KMS model
 * (the protocol layer and the authentication layer raise them).
 */
export type ProtocolErrorName =
  | 'UnknownOperationException'
  | 'SerializationException'
  | 'ValidationException'
  | 'AccessDeniedException'
  | 'InvalidSignatureException'
  | 'IncompleteSignatureException'
  | 'UnrecognizedClientException'
  | 'MissingAuthenticationTokenException'
  | 'ThrottlingException'
  | 'InternalFailure';

export type KmsErrorName = ModelErrorName | ProtocolErrorName;

/**
 * The one error type every layer throws. `name` is the AWS error code sent as `__type`;
 * `message` is sent to the client, so it must never contain key material, plaintext or
 * PIN. Diagnostic detail for operators goes into `internalDetail`, which is logged and
 * never sent.
 */
export class KmsError extends Error {
  override readonly name: KmsErrorName;
  readonly internalDetail: string | undefined;
  /**
   * The failure may come from state the request read before a concurrent change (e.g. key
   * material destroyed after the request looked the key up): running the request again from
   * the start, reading afresh, may give another answer. Never sent to the client.
   */
  readonly staleRead: boolean;
  /**
   * For a KMSInvalidStateException about a key's state: that state. Dialects whose error codes
   * differ by state (the Huawei dialect: disabled, pending deletion, waiting for import) choose
   * by it rather than by parsing the message. Not sent as such.
   */
  readonly keyState: KeyState | undefined;
  /**
   * The request gave up on token work that is still running (a call past its deadline):
   * settles once that work has answered. Whatever the work makes meanwhile (a token object)
   * exists only after the answer, so undoing it must wait for this. Not sent.
   */
  readonly stillRunning: Promise<void> | undefined;

  constructor(
    name: KmsErrorName,
    message: string,
    options: { internalDetail?: string; cause?: unknown; staleRead?: boolean; keyState?: KeyState; stillRunning?: Promise<void> } = {},
  ) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = name;
    this.internalDetail = options.internalDetail;
    this.staleRead = options.staleRead ?? false;
    this.keyState = options.keyState;
    this.stillRunning = options.stillRunning;
  }
}

/**
 * The metadata store cannot be reached or lost the connection mid-call (the database is
 * stopped, restarting, refusing sessions). Deliberately not a KmsError: a transaction whose
 * connection broke during COMMIT may have committed, and callers read a KmsError out of a
 * transaction as "nothing was written". The wire answers KMSInternalException, logged as
 * the store's failure (no stack: it is not a defect of p11kms).
 */
export class StoreUnavailableError extends Error {
  override readonly name: string = 'StoreUnavailableError';
}

/**
 * The metadata store lost its connection during a transaction, and nothing of that
 * transaction was committed: it was lost before its COMMIT reached the database, or the
 * database, asked afterwards on another connection, said the transaction aborted. Answered
 * as any StoreUnavailableError; a caller that made something for the transaction (a token
 * object) undoes it at once, as after a refusal, instead of leaving it to reconciliation.
 */
export class StoreNotCommittedError extends StoreUnavailableError {
  override readonly name: string = 'StoreNotCommittedError';
}

/**
 * The metadata store did not answer within its deadline (storeCallTimeoutSeconds, or a
 * statement or lock timeout set in the database): the database is frozen or too busy. The
 * wire answers DependencyTimeoutException where the operation's model lists it, else
 * KMSInternalException.
 */
export class StoreTimeoutError extends StoreUnavailableError {
  override readonly name = 'StoreTimeoutError';
}

/**
 * A background duty's transaction could not prove, inside itself, that this process still
 * holds the cluster's background-work lock (its lock session ended, perhaps unheard, and
 * another node may run the duties now). Nothing of it was written; the duty pass stops and
 * the process steps down. Never reaches a client: duties run outside requests.
 */
export class BackgroundLockLostError extends Error {
  override readonly name = 'BackgroundLockLostError';
}

export function isKmsError(err: unknown): err is KmsError {
  return err instanceof KmsError;
}

/** AWS's text for ThrottlingException (request quotas and load shedding alike). */
export const THROTTLING_MESSAGE = 'You have exceeded the rate at which you may call KMS. Reduce the frequency of your calls.';

/**
 * AWS's refusal of an encryption, signing or MAC algorithm the key's spec does not offer
 * (recorded: "Algorithm HMAC_SHA_256 is incompatible with key spec HMAC_224."). One text for
 * every algorithm kind; the Huawei dialect maps it by this pattern.
 */
export function incompatibleAlgorithm(algorithm: string, keySpec: string): KmsError {
  return new KmsError('InvalidKeyUsageException', `Algorithm ${algorithm} is incompatible with key spec ${keySpec}.`);
}

/**
 * ThrottlingException for a refusal under load (load shedding, request quotas). Built without
 * a stack trace: refusals come thousands a second exactly when the process is short of CPU,
 * their frames are always the same and never logged, and capturing them cost ~3 % of the main
 * thread in a retry storm (bench/overload.js, CPU profile).
 */
export function throttled(options: { internalDetail?: string } = {}): KmsError {
  const limit = Error.stackTraceLimit;
  Error.stackTraceLimit = 0;
  try {
    return new KmsError('ThrottlingException', THROTTLING_MESSAGE, options);
  } finally {
    Error.stackTraceLimit = limit;
  }
}
