import { KmsError } from '../../errors';
import { isReplica, type KeyRecord } from '../../store/records';
import { isRotatable } from './rotation';
import { notMultiRegionPrimary, requireEnabled } from './key-resolution';

/**
 * AWS's refusals for the rotation operations: key spec, origin (automatic only), state, and
 * replicas (a multi-Region key's rotation is managed on its primary and shared by all).
 */
export function checkRotationTarget(key: KeyRecord, automatic: boolean): void {
  if (!isRotatable(key)) throw new KmsError('UnsupportedOperationException', '');
  if (isReplica(key)) throw notMultiRegionPrimary(key);
  if (automatic && key.origin !== 'AWS_KMS') {
    throw new KmsError('UnsupportedOperationException', `${key.arn} origin is ${key.origin} which is not valid for this operation.`);
  }
  requireEnabled(key);
}
