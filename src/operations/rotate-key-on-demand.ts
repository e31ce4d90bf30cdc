import { withRotationDetails } from '../audit/event';
import { KmsError } from '../errors';
import type { KeyRecord } from '../store/records';
import type { OperationHandler } from './context';
import { loadKeyFor } from './shared/key-resolution';
import { checkRotationTarget } from './shared/rotation-checks';
import { automaticRotationImminent, ON_DEMAND_ROTATION_LIMIT, rotateKey, rotationOf } from './shared/rotation';

/**
 * Rotates now: AWS_KMS keys get new material generated in the token; EXTERNAL keys make
 * their imported material pending rotation current. The rotation is complete when the call
 * returns (AWS finishes it in the background).
 */
export const rotateKeyOnDemand: OperationHandler<'RotateKeyOnDemand'> = async (input, ctx, services) => {
  const key = await loadKeyFor(services, ctx, input.KeyId, { operation: 'RotateKeyOnDemand', states: 'any' });
  const check = (current: KeyRecord) => {
    checkRotationTarget(current, false);
    if (rotationOf(current).onDemandCount >= ON_DEMAND_ROTATION_LIMIT) {
      throw new KmsError(
        'LimitExceededException',
        `The on-demand rotations limit has been reached for the given keyId. No more on-demand rotations can be performed for this key: ${current.arn}`,
      );
    }
    // The model's ConflictException; AWS's message for it is not recorded, this one is p11kms's.
    if (automaticRotationImminent(current, services.clock.now())) {
      throw new KmsError('ConflictException', `${current.arn} cannot be rotated on demand now: its automatic rotation is in progress or begins within 20 minutes.`);
    }
  };
  check(key);
  const rotation = (await rotateKey(services, key, 'ON_DEMAND', check))!;
  return withRotationDetails(
    { KeyId: key.arn },
    { rotationType: 'ON_DEMAND', keyOrigin: key.origin, previousKeyMaterialId: rotation.previous.materialId, currentKeyMaterialId: rotation.current.materialId },
  );
};
