import type { OperationHandler } from './context';
import { updateKey } from './shared/update-key';

export const updateKeyDescription: OperationHandler<'UpdateKeyDescription'> = async (input, ctx, services) => {
  await updateKey(services, ctx, input.KeyId, { operation: 'UpdateKeyDescription', states: 'manage' }, (key) => ({ ...key, description: input.Description }));
  return {};
};
