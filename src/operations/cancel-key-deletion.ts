import { KmsError } from '../errors';
import type { OperationHandler } from './context';
import { updateKey } from './shared/update-key';

export const cancelKeyDeletion: OperationHandler<'CancelKeyDeletion'> = async (input, ctx, services) => {
  const key = await updateKey(services, ctx, input.KeyId, { operation: 'CancelKeyDeletion' }, (current) => {
    if (current.keyState !== 'PendingDeletion' && current.keyState !== 'PendingReplicaDeletion') {
      throw new KmsError('KMSInvalidStateException', `${current.arn} is not pending deletion.`);
    }
    // AWS leaves a key whose deletion was cancelled disabled.
    const { deletionDate: _d, pendingWindowInDays: _p, ...rest } = current;
    return { ...rest, keyState: 'Disabled' };
  });
  return { KeyId: key.arn };
};
