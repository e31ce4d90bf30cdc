import { KmsError } from '../../errors';
import type { OperationName } from '../../model/generated/types';
import type { OperationHandler } from '../context';

/** Runs of one request when the key changed under it (the first run counts). */
const ATTEMPTS = 3;

/**
 * Wraps an operation that only reads keys and uses their material: when it failed because
 * what it read went stale (material destroyed by a concurrent DeleteImportedKeyMaterial,
 * expiry or deletion after the lookup), it runs again from the start, so the caller gets the
 * answer the key's new state gives (e.g. KMSInvalidStateException for a key now
 * PendingImport) instead of a KeyUnavailableException for a key that is fine.
 * Only for operations with no side effects before their token call.
 */
export function retryingStaleReads<Op extends OperationName>(handler: OperationHandler<Op>): OperationHandler<Op> {
  return async (input, ctx, services) => {
    for (let attempt = 1; ; attempt++) {
      try {
        return await handler(input, ctx, services);
      } catch (err) {
        if (!(err instanceof KmsError && err.staleRead) || attempt >= ATTEMPTS) throw err;
      }
    }
  };
}
