import type { OperationHandler } from './context';
import { updateKey } from './shared/update-key';

export const enableKey: OperationHandler<'EnableKey'> = async (input, ctx, services) => {
  await updateKey(services, ctx, input.KeyId, { operation: 'EnableKey', states: 'toggle' }, (key) => {
    if (key.keyState !== 'Disabled') return key;
    return { ...key, keyState: 'Enabled' };
  });
  return {};
};
