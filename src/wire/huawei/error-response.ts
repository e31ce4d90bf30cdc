import type { Logger } from 'pino';
import { KmsError, StoreTimeoutError, StoreUnavailableError } from '../../errors';
import { mapKmsError } from './error-mapping';
import { HuaweiError } from './errors';

/** The one place a failure of this dialect becomes its error response. */
export interface ErrorReply {
  status: number;
  body: string;
}

function reply(status: number, code: string, message: string): ErrorReply {
  return { status, body: JSON.stringify({ error: { error_code: code, error_msg: message } }) };
}

/**
 * Builds the response for any failure. KmsErrors go through ./error-mapping.ts; HuaweiErrors
 * are already in this dialect's terms; anything else is a defect: logged with its stack and
 * answered with a bare KMS.0101.
 */
export function huaweiErrorResponse(err: unknown, log: Logger, context: { requestId: string; action?: string }): ErrorReply {
  if (err instanceof HuaweiError) return reply(err.status, err.code, err.message);
  if (err instanceof KmsError) {
    const mapped = mapKmsError(err, context.action);
    if (mapped.status >= 500 || err.internalDetail) {
      log.warn({ ...context, error: err.name, detail: err.internalDetail }, 'request failed in the key store');
    }
    return reply(mapped.status, mapped.code, mapped.message);
  }
  if (err instanceof StoreUnavailableError) {
    log.warn({ ...context, err: err.message }, 'request failed in the metadata store');
    const mapped = mapKmsError(new KmsError(err instanceof StoreTimeoutError ? 'DependencyTimeoutException' : 'KMSInternalException', err.message), context.action);
    return reply(mapped.status, mapped.code, mapped.message);
  }
  log.error({ ...context, err }, 'unexpected failure');
  return reply(500, 'KMS.0101', 'KMS error.');
}
