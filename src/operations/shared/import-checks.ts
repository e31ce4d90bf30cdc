import { KmsError } from '../../errors';
import type { KeyRecord } from '../../store/records';
import { type KeyStateRule, requireKeyState } from './key-states';

/**
 * Import operations need an EXTERNAL key (any other origin is UnsupportedOperationException
 * whatever its state, as on AWS) in a state of `states`: GetParametersForImport and
 * ImportKeyMaterial refuse a key pending deletion, DeleteImportedKeyMaterial does not.
 */
export function checkImportTarget(key: KeyRecord, states: KeyStateRule = 'manage'): void {
  if (key.origin !== 'EXTERNAL') {
    throw new KmsError('UnsupportedOperationException', `${key.arn} origin is ${key.origin} which is not valid for this operation.`);
  }
  requireKeyState(key, states);
}
