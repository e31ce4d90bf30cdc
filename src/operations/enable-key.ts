import type { OperationHandler } from './context';
import { invalidState } from './shared/key-resolution';
import { updateKey } from './shared/update-key';

export const enableKey: OperationHandler<'EnableKey'> = async (input, ctx, services) => {
  await updateKey(services, ctx, input.KeyId, { operation: 'EnableKey' }, (key) => {
    if (key.keyState === 'Enabled') return key;
    if (key.keyState !== 'Disabled') throw invalidState(key);
    return { ...key, keyState: 'Enabled' };
  });
  return {};
};
