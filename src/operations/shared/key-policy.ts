import { KmsError } from '../../errors';
import { checkPolicyLockout } from '../../access/authorize';
import { parsePolicy, rejectDuplicateStatementIds, rejectOverlyPermissiveConditions } from '../../access/policy-document';
import type { KeyRecord } from '../../store/records';
import type { RequestContext, Services } from '../context';
import { requestConditionValues } from './key-resolution';

/** The only key policy name AWS KMS has. */
export const POLICY_NAME = 'default';

/**
 * GetKeyPolicy and PutKeyPolicy alike: a key has no policy by any other name, so naming one
 * is NotFoundException (both operations' models list it, neither lists ValidationException;
 * the model: "The only valid name is default"). Checked once the key was found and the
 * caller allowed, as GetKeyPolicy always did.
 */
export function requireDefaultPolicyName(name: string | undefined): void {
  if (name !== undefined && name !== POLICY_NAME) throw new KmsError('NotFoundException', `No such policy exists: ${name}`);
}

/** AWS's key policy size limit ("32 kilobytes (32768 bytes)"); the model's 131072 is the wire limit. */
const MAX_POLICY_BYTES = 32_768;

/**
 * Validates a key policy for CreateKey / PutKeyPolicy: a well-formed document (in strict
 * mode every AWS principal must exist in the credentials file), and unless bypassed, the
 * lockout safety check (the caller must still be allowed kms:PutKeyPolicy afterwards).
 * MalformedPolicyDocumentException otherwise; a document over the size limit is
 * LimitExceededException, as the model documents for Policy.
 */
export function checkKeyPolicy(services: Services, ctx: RequestContext, policy: string, key: KeyRecord, bypassLockoutCheck: boolean | undefined): void {
  const size = Buffer.byteLength(policy, 'utf8');
  if (size > MAX_POLICY_BYTES) {
    throw new KmsError('LimitExceededException', `The key policy is ${size} bytes; the limit is ${MAX_POLICY_BYTES} bytes.`);
  }
  const access = services.access;
  const directory = access?.enforce ? access.directory : undefined;
  const document = parsePolicy(policy, 'key', directory ? { principalExists: (p) => directory.principalExists(p) } : {});
  rejectOverlyPermissiveConditions(document);
  rejectDuplicateStatementIds(document);
  if (bypassLockoutCheck) return;
  // The check asks about a later, ordinary PutKeyPolicy: one without BypassPolicyLockoutSafetyCheck.
  const values = requestConditionValues(services, ctx, { key, request: {} });
  checkPolicyLockout(access, ctx.caller, document, key, values);
}
