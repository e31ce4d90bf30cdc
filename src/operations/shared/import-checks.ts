import { KmsError } from '../../errors';
import type { KeyRecord } from '../../store/records';
import { invalidState } from './key-resolution';

/** Import operations need an EXTERNAL key that is not pending deletion. */
export function checkImportTarget(key: KeyRecord): void {
  if (key.origin !== 'EXTERNAL') {
    throw new KmsError('UnsupportedOperationException', `${key.arn} origin is ${key.origin} which is not valid for this operation.`);
  }
  if (key.keyState === 'PendingDeletion') throw invalidState(key);
}
