import { eventIdOf } from '../audit/event';
import type { OperationHandler } from './context';
import { loadKeyFor } from './shared/key-resolution';

/**
 * The last successful cryptographic use of the key. p11kms tracks every key from its
 * creation, so TrackingStartDate is the creation date. CloudTrailEventId is the eventID of
 * that call's audit record (derived from its request id).
 */
export const getKeyLastUsage: OperationHandler<'GetKeyLastUsage'> = async (input, ctx, services) => {
  const key = await loadKeyFor(services, ctx, input.KeyId, { operation: 'GetKeyLastUsage', states: 'any' });
  // Queued or being flushed, else the store as it is now (a flush may have committed since `key` was read).
  const usage = services.usage?.unflushed(key) ?? (await services.store.getKey(key))?.lastUsage ?? key.lastUsage;
  return {
    KeyId: key.keyId,
    KeyCreationDate: new Date(key.createdAt),
    TrackingStartDate: new Date(key.createdAt),
    ...(usage
      ? { KeyLastUsage: { Operation: usage.operation as 'Encrypt', Timestamp: new Date(usage.at), KmsRequestId: usage.requestId, CloudTrailEventId: eventIdOf(usage.requestId) } }
      : {}),
  };
};
