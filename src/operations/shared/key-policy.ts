import { checkPolicyLockout } from '../../access/authorize';
import { parsePolicy } from '../../access/policy-document';
import type { KeyRecord } from '../../store/records';
import type { RequestContext, Services } from '../context';
import { requestConditionValues } from './key-resolution';

/** The only key policy name AWS KMS has. */
export const POLICY_NAME = 'default';

/**
 * Validates a key policy for CreateKey / PutKeyPolicy: a well-formed document (in strict
 * mode every AWS principal must exist in the credentials file), and unless bypassed, the
 * lockout safety check (the caller must still be allowed kms:PutKeyPolicy afterwards).
 * MalformedPolicyDocumentException otherwise.
 */
export function checkKeyPolicy(services: Services, ctx: RequestContext, policy: string, key: KeyRecord, bypassLockoutCheck: boolean | undefined): void {
  const access = services.access;
  const directory = access?.enforce ? access.directory : undefined;
  const document = parsePolicy(policy, 'key', directory ? { principalExists: (p) => directory.principalExists(p) } : {});
  if (bypassLockoutCheck) return;
  const values = requestConditionValues(services, ctx, { key, request: { bypassPolicyLockoutSafetyCheck: false } });
  checkPolicyLockout(access, ctx.caller, document, key, values);
}
