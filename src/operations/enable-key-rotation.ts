import type { OperationHandler } from './context';
import { checkRotationTarget } from './shared/rotation-checks';
import { DAY_MS, DEFAULT_ROTATION_PERIOD_DAYS, rotationOf } from './shared/rotation';
import { updateKey } from './shared/update-key';

export const enableKeyRotation: OperationHandler<'EnableKeyRotation'> = async (input, ctx, services) => {
  // kms:RotationPeriodInDays is the model's default (365) when the request leaves the period
  // out, as AWS's conditions on request parameters are (see ScheduleKeyDeletion): a Deny of
  // periods over 180 days must not be passed by omitting the period.
  const conditions = { rotationPeriodInDays: input.RotationPeriodInDays ?? DEFAULT_ROTATION_PERIOD_DAYS };
  await updateKey(services, ctx, input.KeyId, { operation: 'EnableKeyRotation', conditions }, (key) => {
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
