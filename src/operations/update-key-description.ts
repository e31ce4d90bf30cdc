import type { OperationHandler } from './context';
import { invalidState } from './shared/key-resolution';
import { updateKey } from './shared/update-key';

export const updateKeyDescription: OperationHandler<'UpdateKeyDescription'> = async (input, ctx, services) => {
  await updateKey(services, ctx, input.KeyId, { operation: 'UpdateKeyDescription' }, (key) => {
    if (key.keyState === 'PendingDeletion') throw invalidState(key);
    return { ...key, description: input.Description };
  });
  return {};
};
