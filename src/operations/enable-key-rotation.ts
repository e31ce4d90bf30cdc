import type { OperationHandler } from './context';
import { checkRotationTarget } from './shared/rotation-checks';
import { DAY_MS, DEFAULT_ROTATION_PERIOD_DAYS, rotationOf } from './shared/rotation';
import { updateKey } from './shared/update-key';

export const enableKeyRotation: OperationHandler<'EnableKeyRotation'> = async (input, ctx, services) => {
  await updateKey(services, ctx, input.KeyId, { operation: 'EnableKeyRotation', conditions: { rotationPeriodInDays: input.RotationPeriodInDays } }, (key) => {
    checkRotationTarget(key, true);
    const now = services.clock.now();
    const rotation = rotationOf(key);
    if (!rotation.enabled || rotation.nextRotationAt === undefined) {
      const periodInDays = input.RotationPeriodInDays ?? DEFAULT_ROTATION_PERIOD_DAYS;
      return { ...key, rotation: { ...rotation, enabled: true, periodInDays, nextRotationAt: now + periodInDays * DAY_MS } };
    }
    // A new period counts from the last automatic rotation (or from when rotation was enabled).
    const periodInDays = input.RotationPeriodInDays ?? rotation.periodInDays;
    const anchor = rotation.nextRotationAt - rotation.periodInDays * DAY_MS;
    return { ...key, rotation: { ...rotation, periodInDays, nextRotationAt: anchor + periodInDays * DAY_MS } };
  });
  return {};
};
