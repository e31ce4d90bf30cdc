import { KmsError } from '../../errors';
import type { KeyRecord } from '../../store/records';
import { isRotatable } from './rotation';
import { requireEnabled } from './key-resolution';

/** AWS's refusals for the rotation operations: key spec, origin (automatic only), state. */
export function checkRotationTarget(key: KeyRecord, automatic: boolean): void {
  if (!isRotatable(key)) throw new KmsError('UnsupportedOperationException', '');
  if (automatic && key.origin !== 'AWS_KMS') {
    throw new KmsError('UnsupportedOperationException', `${key.arn} origin is ${key.origin} which is not valid for this operation.`);
  }
  requireEnabled(key);
}
