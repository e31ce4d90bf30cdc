import { KmsError } from '../errors';
import type { OperationHandler } from './context';
import { isReplica } from '../store/records';
import { updateKey } from './shared/update-key';

const DAY_MS = 24 * 60 * 60 * 1000;
const DEFAULT_WINDOW_DAYS = 30;

const MIN_WINDOW_DAYS = 7;
const MAX_WINDOW_DAYS = 30;

export const scheduleKeyDeletion: OperationHandler<'ScheduleKeyDeletion'> = async (input, ctx, services) => {
  const days = input.PendingWindowInDays ?? DEFAULT_WINDOW_DAYS;
  // The model allows 1-365; AWS documents (and enforces) 7-30 for a key's own deletion.
  if (days < MIN_WINDOW_DAYS || days > MAX_WINDOW_DAYS) {
    const bound = days < MIN_WINDOW_DAYS ? `greater than or equal to ${MIN_WINDOW_DAYS}` : `less than or equal to ${MAX_WINDOW_DAYS}`;
    throw new KmsError(
      'ValidationException',
      `1 validation error detected: Value '${days}' at 'pendingWindowInDays' failed to satisfy constraint: Member must have value ${bound}`,
    );
  }
  // The window in effect, the default when the request leaves it out: AWS's conditions on a
  // request parameter "work even when the parameter doesn't appear in the request, such as
  // when you use the parameter's default value" (developer guide, AWS KMS condition keys), so
  // a Deny of short windows or an Allow of exactly 30 days sees the 30 it will get.
  const conditions = { scheduleKeyDeletionPendingWindowInDays: days };
  const key = await updateKey(services, ctx, input.KeyId, { operation: 'ScheduleKeyDeletion', states: 'manage', conditions }, (current, regions) => {
    // A multi-Region primary outlives its replicas: its waiting period starts when the last
    // replica is deleted (the deletion sweeper starts it).
    if (!isReplica(current) && regions.some((r) => isReplica(r))) {
      return { ...current, keyState: 'PendingReplicaDeletion', pendingWindowInDays: days };
    }
    return {
      ...current,
      keyState: 'PendingDeletion',
      deletionDate: services.clock.now() + days * DAY_MS,
      pendingWindowInDays: days,
    };
  });
  return {
    KeyId: key.arn,
    ...(key.deletionDate !== undefined ? { DeletionDate: new Date(key.deletionDate) } : {}),
    KeyState: key.keyState,
    PendingWindowInDays: days,
  };
};
