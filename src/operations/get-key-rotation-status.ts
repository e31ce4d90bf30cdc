import { KmsError } from '../errors';
import type { OperationHandler } from './context';
import { loadKeyFor } from './shared/key-resolution';
import { isRotatable, rotationOf } from './shared/rotation';

/**
 * Rotation status as AWS reports it: enabled keys carry the period and the next date; a key
 * pending deletion reports false (its setting returns if the deletion is cancelled), and so does
 * a multi-Region primary waiting in PendingReplicaDeletion (it is not rotated either). On-demand
 * rotations complete within the RotateKeyOnDemand call, so OnDemandRotationStartDate never
 * appears.
 */
export const getKeyRotationStatus: OperationHandler<'GetKeyRotationStatus'> = async (input, ctx, services) => {
  const key = await loadKeyFor(services, ctx, input.KeyId, { operation: 'GetKeyRotationStatus', states: 'any' });
  if (!isRotatable(key)) throw new KmsError('UnsupportedOperationException', '');
  const rotation = rotationOf(key);
  if (!rotation.enabled || rotation.nextRotationAt === undefined || key.keyState === 'PendingDeletion' || key.keyState === 'PendingReplicaDeletion') {
    return { KeyId: key.arn, KeyRotationEnabled: false };
  }
  return {
    KeyId: key.arn,
    KeyRotationEnabled: true,
    RotationPeriodInDays: rotation.periodInDays,
    NextRotationDate: new Date(rotation.nextRotationAt),
  };
};
