import type { OperationHandler } from './context';
import { materialStateAfterImportChange } from './shared/import-state';
import { updateKey } from './shared/update-key';

export const cancelKeyDeletion: OperationHandler<'CancelKeyDeletion'> = async (input, ctx, services) => {
  const key = await updateKey(services, ctx, input.KeyId, { operation: 'CancelKeyDeletion', states: 'pendingDeletion' }, (current) => {
    // AWS leaves a key whose deletion was cancelled disabled; one whose imported material was
    // deleted or expired meanwhile is pending import (and Disabled once imported again).
    const { deletionDate: _d, pendingWindowInDays: _p, ...rest } = current;
    const cancelled = { ...rest, keyState: 'Disabled' as const };
    return current.origin === 'EXTERNAL' ? materialStateAfterImportChange(cancelled, cancelled.materials) : cancelled;
  });
  return { KeyId: key.arn };
};
