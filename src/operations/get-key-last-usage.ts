import type { OperationHandler } from './context';
import { loadKeyFor } from './shared/key-resolution';

/**
 * The last successful cryptographic use of the key. p11kms tracks every key from its
 * creation, so TrackingStartDate is the creation date. CloudTrailEventId is not reported:
 * the audit record of the call carries the same request id (KmsRequestId).
 */
export const getKeyLastUsage: OperationHandler<'GetKeyLastUsage'> = async (input, ctx, services) => {
  const key = await loadKeyFor(services, ctx, input.KeyId, { operation: 'GetKeyLastUsage', allowedStates: 'any' });
  const usage = services.usage?.unflushed(key.keyId) ?? key.lastUsage;
  return {
    KeyId: key.keyId,
    KeyCreationDate: new Date(key.createdAt),
    TrackingStartDate: new Date(key.createdAt),
    ...(usage
      ? { KeyLastUsage: { Operation: usage.operation as 'Encrypt', Timestamp: new Date(usage.at), KmsRequestId: usage.requestId } }
      : {}),
  };
};
