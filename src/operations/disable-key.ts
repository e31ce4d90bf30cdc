import type { OperationHandler } from './context';
import { updateKey } from './shared/update-key';

export const disableKey: OperationHandler<'DisableKey'> = async (input, ctx, services) => {
  await updateKey(services, ctx, input.KeyId, { operation: 'DisableKey', states: 'toggle' }, (key) => {
    if (key.keyState !== 'Enabled') return key;
    return { ...key, keyState: 'Disabled' };
  });
  return {};
};
