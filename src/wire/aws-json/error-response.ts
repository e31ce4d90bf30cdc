import type { Logger } from 'pino';
import { type KmsErrorName, KmsError, type ProtocolErrorName, StoreTimeoutError, StoreUnavailableError } from '../../errors';
import { MODEL_ERROR_HTTP_STATUS, type ModelErrorName, OPERATION_ERRORS } from '../../model/generated/errors';
import type { OperationName } from '../../model/generated/types';

const PROTOCOL_ERROR_HTTP_STATUS: Record<ProtocolErrorName, number> = {
  UnknownOperationException: 400,
  SerializationException: 400,
  ValidationException: 400,
  AccessDeniedException: 400,
  InvalidSignatureException: 400,
  IncompleteSignatureException: 400,
  UnrecognizedClientException: 400,
  MissingAuthenticationTokenException: 403,
  ThrottlingException: 400,
  InternalFailure: 500,
};

export function httpStatusOf(name: KmsErrorName): number {
  return MODEL_ERROR_HTTP_STATUS[name as ModelErrorName] ?? PROTOCOL_ERROR_HTTP_STATUS[name as ProtocolErrorName] ?? 400;
}

/**
 * The one place a failure becomes an AWS JSON error response. A KmsError is sent as it is
 * (its internal detail, such as a PKCS#11 return code, is logged only); anything else is a
 * defect: logged with its stack, answered with a bare KMSInternalException.
 */
export function errorResponse(err: unknown, log: Logger, context: Record<string, unknown>): { status: number; body: string } {
  let error: KmsError;
  if (err instanceof KmsError) {
    error = err;
    const status = httpStatusOf(error.name);
    if (status >= 500 || error.internalDetail) {
      log.warn({ ...context, error: error.name, detail: error.internalDetail }, 'request failed in the key store');
    }
  } else if (err instanceof StoreUnavailableError) {
    log.warn({ ...context, err: err.message }, 'request failed in the metadata store');
    error = err instanceof StoreTimeoutError ? storeTimeoutAnswer(context.operation) : new KmsError('KMSInternalException', 'An internal error occurred.');
  } else {
    log.error({ ...context, err }, 'unexpected failure');
    error = new KmsError('KMSInternalException', 'An internal error occurred.');
  }
  return { status: httpStatusOf(error.name), body: JSON.stringify({ __type: error.name, message: error.message }) };
}

/**
 * AWS's answer when a dependency timed out: DependencyTimeoutException ("The system timed out
 * while trying to fulfill the request. You can retry the request.", the model's text), for the
 * operations whose model lists it; the others (TagResource, GenerateMac, …) list only
 * KMSInternalException among the faults.
 */
function storeTimeoutAnswer(operation: unknown): KmsError {
  const listed = typeof operation === 'string' ? OPERATION_ERRORS[operation as OperationName] : undefined;
  return listed?.includes('DependencyTimeoutException')
    ? new KmsError('DependencyTimeoutException', 'The system timed out while trying to fulfill the request. You can retry the request.')
    : new KmsError('KMSInternalException', 'An internal error occurred.');
}
