import { KmsError } from '../errors';
import type { KeyRecord } from '../store/records';
import type { Caller } from './principal';

/**
 * Decides whether `caller` may perform `action` (e.g. "kms:Decrypt") on `key`.
 *
 * Today this enforces what the default key policy says: the key's own account may do
 * everything, other accounts nothing. Key policies, identity policies and grants
 * (issue #5) plug in here; no operation decides access on its own.
 */
export function authorizeKeyAction(caller: Caller, action: string, key: KeyRecord): void {
  if (caller.accountId === key.accountId) return;
  throw new KmsError(
    'AccessDeniedException',
    `User: ${caller.principalArn} is not authorized to perform: ${action} on resource: ${key.arn} because no resource-based policy allows the ${action} action`,
  );
}
