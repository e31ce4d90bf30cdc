import type { OperationHandler } from './context';
import { invalidState } from './shared/key-resolution';
import { updateKey } from './shared/update-key';

export const disableKey: OperationHandler<'DisableKey'> = async (input, ctx, services) => {
  await updateKey(services, ctx, input.KeyId, { operation: 'DisableKey' }, (key) => {
    if (key.keyState === 'Disabled') return key;
    if (key.keyState !== 'Enabled') throw invalidState(key);
    return { ...key, keyState: 'Disabled' };
  });
  return {};
};
