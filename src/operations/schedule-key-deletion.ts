import type { OperationHandler } from './context';
import { invalidState } from './shared/key-resolution';
import { updateKey } from './shared/update-key';

const DAY_MS = 24 * 60 * 60 * 1000;
const DEFAULT_WINDOW_DAYS = 30;

export const scheduleKeyDeletion: OperationHandler<'ScheduleKeyDeletion'> = async (input, ctx, services) => {
  const days = input.PendingWindowInDays ?? DEFAULT_WINDOW_DAYS;
  const key = await updateKey(services, ctx, input.KeyId, { operation: 'ScheduleKeyDeletion' }, (current) => {
    if (current.keyState === 'PendingDeletion') throw invalidState(current);
    return {
      ...current,
      keyState: 'PendingDeletion',
      deletionDate: services.clock.now() + days * DAY_MS,
      pendingWindowInDays: days,
    };
  });
  return { KeyId: key.arn, DeletionDate: new Date(key.deletionDate!), KeyState: key.keyState, PendingWindowInDays: days };
};
