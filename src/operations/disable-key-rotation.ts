import type { OperationHandler } from './context';
import { checkRotationTarget } from './shared/rotation-checks';
import { rotationOf } from './shared/rotation';
import { updateKey } from './shared/update-key';

export const disableKeyRotation: OperationHandler<'DisableKeyRotation'> = async (input, ctx, services) => {
  await updateKey(services, ctx, input.KeyId, { operation: 'DisableKeyRotation' }, (key) => {
    checkRotationTarget(key, true);
    const rotation = rotationOf(key);
    if (!rotation.enabled) return key;
    return { ...key, rotation: { enabled: false, periodInDays: rotation.periodInDays, onDemandCount: rotation.onDemandCount } };
  });
  return {};
};
