import { KmsError } from '../errors';
import type { GrantRecord } from '../store/grant-record';
import type { KeyRecord } from '../store/records';
import type { RequestConditions } from './condition-keys';
import type { ConditionValues } from './condition-operators';
import { grantAllows, grantIdOfToken, grantMayDelegate } from './grants';
import type { GrantConstraintsRecord } from '../store/grant-record';
import type { GrantOperation } from '../model/generated/types';
import { matchPrincipal } from './principal-matching';
import { parsePolicy, type PolicyDocument } from './policy-document';
import { evaluateIdentityPolicies, evaluateKeyPolicy } from './policy-evaluation';
import type { Caller } from './principal';
import type { PrincipalDirectory } from './principal-directory';

/**
 * The one place where access is decided.
 *
 * strict mode (`enforce`), in AWS's order (identity policies as in IAM: a user, role or
 * session without one has none that allows anything; the account root is not restricted):
 *   1. an explicit Deny in the key policy or in the caller's identity policies wins;
 *   2. Allow when the key policy allows the caller itself (or `*`);
 *   3. Allow when the key policy allows the caller's account (delegation to IAM) and the
 *      caller's identity policies allow — for a caller of another account, the key policy
 *      must allow it in any form *and* its identity policies must allow;
 *   4. Allow when one of the key's grants allows the operation to the caller under its
 *      constraints;
 *   otherwise AccessDeniedException naming the principal and the action.
 * permissive mode: the key's own account may do everything, other accounts nothing (the
 * behaviour CI users of `npm start` rely on).
 */
export interface AccessControl {
  readonly enforce: boolean;
  readonly directory: PrincipalDirectory;
}

export interface KeyAccessRequest {
  caller: Caller;
  /** e.g. kms:Decrypt */
  action: string;
  key: KeyRecord;
  values: ConditionValues;
  request: RequestConditions;
  /** The key's grants. */
  grants: readonly GrantRecord[];
  grantTokens?: readonly string[];
  /** The key was found from a ciphertext rather than named by the caller (changes AWS's message). */
  viaCiphertext?: boolean;
}

/** Actions AWS allows on a key of another account (through its key ARN). */
const CROSS_ACCOUNT_ACTIONS: ReadonlySet<string> = new Set([
  'kms:CreateGrant',
  'kms:Decrypt',
  'kms:DeriveSharedSecret',
  'kms:DescribeKey',
  'kms:Encrypt',
  'kms:GenerateDataKey',
  'kms:GenerateDataKeyPair',
  'kms:GenerateDataKeyPairWithoutPlaintext',
  'kms:GenerateDataKeyWithoutPlaintext',
  'kms:GenerateMac',
  'kms:GetKeyRotationStatus',
  'kms:GetPublicKey',
  'kms:ListGrants',
  'kms:ReEncryptFrom',
  'kms:ReEncryptTo',
  'kms:RetireGrant',
  'kms:RevokeGrant',
  'kms:Sign',
  'kms:Verify',
  'kms:VerifyMac',
]);

type Decision = { allowed: true; grant?: GrantRecord } | { allowed: false; reason: 'resource-deny' | 'identity-deny' | 'no-resource-allow' | 'no-identity-allow' };

/** Throws AccessDeniedException unless `caller` may perform `action` on `key`. Returns the grant that allowed it, if any. */
export function authorizeKeyAction(access: AccessControl | undefined, req: KeyAccessRequest): { grant?: GrantRecord } {
  for (const token of req.grantTokens ?? []) grantIdOfToken(token);
  const decision = decide(access, req, () => keyPolicyOf(req.key));
  if (decision.allowed) return { grant: decision.grant };
  throw denial(req.caller, req.action, req.key.arn, decision.reason, req.viaCiphertext === true);
}

/**
 * The lockout safety check of CreateKey and PutKeyPolicy: the new policy must let the
 * caller change the key policy later (key policy and identity policies; grants cannot).
 */
export function checkPolicyLockout(access: AccessControl | undefined, caller: Caller, policy: PolicyDocument, key: KeyRecord, values: ConditionValues): void {
  if (!access?.enforce) return;
  const decision = decide(access, { caller, action: 'kms:PutKeyPolicy', key, values, request: {}, grants: [] }, () => policy);
  if (!decision.allowed) {
    throw new KmsError('MalformedPolicyDocumentException', 'The new key policy will not allow you to update the key policy in the future.');
  }
}

/**
 * Actions AWS authorises by IAM policy alone — those without a key (CreateKey, ListKeys,
 * ListAliases, GenerateRandom, ListRetirableGrants, the custom key store operations; resource
 * "*") and the alias half of the alias operations (resource: the alias ARN). The caller's
 * identity policies must allow; the account root always may (IAM does not restrict it).
 */
export function authorizeAccountAction(access: AccessControl | undefined, caller: Caller, action: string, resource: string, values: ConditionValues): void {
  if (!access?.enforce) return;
  const policies = access.directory.identityPoliciesOf(caller);
  if (!policies) return;
  const result = evaluateIdentityPolicies(policies, { caller, action, resource, values });
  if (result.deny) throw denial(caller, action, resource, 'identity-deny', false);
  if (!result.allow) throw denial(caller, action, resource, 'no-identity-allow', false);
}

/**
 * CreateGrant allowed only by a grant (the CreateGrant grant operation): the new grant may
 * pass on only operations of that grant, under constraints at least as strict.
 */
export function authorizeGrantDelegation(
  caller: Caller,
  key: KeyRecord,
  parent: GrantRecord | undefined,
  operations: readonly GrantOperation[],
  constraints: GrantConstraintsRecord | undefined,
): void {
  if (parent && !grantMayDelegate(parent, operations, constraints)) {
    throw denial(caller, 'kms:CreateGrant', key.arn, 'no-resource-allow', false);
  }
}

/**
 * RetireGrant, as AWS's "Retiring and revoking grants" says: the grant decides who may retire
 * it — its retiring principal, its grantee when it includes RetireGrant, the account in which
 * it was created — and kms:RetireGrant in IAM policies only delegates and denies:
 * - an identity-policy Deny of kms:RetireGrant (on the key ARN) stops everyone it applies to;
 * - where the grant names an account (root), or for the account that created the grant, its
 *   root may retire, and its users, roles and sessions when their identity policies allow
 *   kms:RetireGrant (delegation);
 * - kms:RetireGrant in a key policy has no effect.
 * In permissive mode the key's own account may retire its grants, as it may do everything.
 */
export function authorizeRetireGrant(access: AccessControl | undefined, caller: Caller, grant: GrantRecord, keyArnOfGrant: string, values: ConditionValues): void {
  if (!access?.enforce && caller.accountId === grant.accountId) return;
  const policies = access?.enforce ? access.directory.identityPoliciesOf(caller) : undefined;
  const fromIdentity = policies ? evaluateIdentityPolicies(policies, { caller, action: 'kms:RetireGrant', resource: keyArnOfGrant, values }) : { deny: false, allow: true };
  if (fromIdentity.deny) throw denial(caller, 'kms:RetireGrant', keyArnOfGrant, 'identity-deny', false);
  const named = [
    ...(grant.retiringPrincipal !== undefined ? [matchPrincipal(grant.retiringPrincipal, caller)] : []),
    ...(grant.operations.includes('RetireGrant') ? [matchPrincipal(grant.granteePrincipal, caller)] : []),
    matchPrincipal(grant.issuingAccount, caller),
  ];
  if (named.includes('direct')) return;
  if (named.includes('account')) {
    if (fromIdentity.allow) return;
    throw denial(caller, 'kms:RetireGrant', keyArnOfGrant, 'no-identity-allow', false);
  }
  throw denial(caller, 'kms:RetireGrant', keyArnOfGrant, 'no-resource-allow', false);
}

function decide(access: AccessControl | undefined, req: KeyAccessRequest, keyPolicy: () => PolicyDocument): Decision {
  const { caller, action, key } = req;
  const sameAccount = caller.accountId === key.accountId;
  if (!access?.enforce) return sameAccount ? { allowed: true } : { allowed: false, reason: 'no-resource-allow' };
  if (!sameAccount && !CROSS_ACCOUNT_ACTIONS.has(action)) return { allowed: false, reason: 'no-resource-allow' };

  const evaluation = { caller, action, resource: key.arn, values: req.values };
  const fromKey = evaluateKeyPolicy(keyPolicy(), evaluation);
  if (fromKey.deny) return { allowed: false, reason: 'resource-deny' };
  const policies = access.directory.identityPoliciesOf(caller);
  // undefined: the account root, which identity policies do not restrict.
  const fromIdentity = policies ? evaluateIdentityPolicies(policies, evaluation) : { deny: false, allow: true };
  if (fromIdentity.deny) return { allowed: false, reason: 'identity-deny' };

  if (sameAccount && fromKey.allow === 'direct') return { allowed: true };
  if (fromKey.allow !== 'none' && fromIdentity.allow) return { allowed: true };
  const grant = req.grants.find((g) => grantAllows(g, caller, action, req.request));
  if (grant) return { allowed: true, grant };
  return { allowed: false, reason: fromKey.allow !== 'none' ? 'no-identity-allow' : 'no-resource-allow' };
}

function denial(caller: Caller, action: string, resource: string, reason: Exclude<Decision, { allowed: true }>['reason'], viaCiphertext: boolean): KmsError {
  const who = `User: ${caller.principalArn} is not authorized to perform: ${action}`;
  if (viaCiphertext) {
    return new KmsError(
      'AccessDeniedException',
      `${who} on the resource associated with this ciphertext because the resource does not exist in this Region, no resource-based policies allow access, or a resource-based policy explicitly denies access`,
    );
  }
  const on = `${who} on resource: ${resource}`;
  switch (reason) {
    case 'resource-deny':
      return new KmsError('AccessDeniedException', `${on} with an explicit deny in a resource-based policy`);
    case 'identity-deny':
      return new KmsError('AccessDeniedException', `${on} with an explicit deny in an identity-based policy`);
    case 'no-identity-allow':
      return new KmsError('AccessDeniedException', `${on} because no identity-based policy allows the ${action} action`);
    default:
      return new KmsError('AccessDeniedException', `${on} because no resource-based policy allows the ${action} action`);
  }
}

/** Stored key policies were validated when written; parsed documents are cached by text. */
const parsedPolicies = new Map<string, PolicyDocument>();
const CACHE_LIMIT = 1000;

function keyPolicyOf(key: KeyRecord): PolicyDocument {
  let doc = parsedPolicies.get(key.policy);
  if (!doc) {
    try {
      doc = parsePolicy(key.policy, 'key');
    } catch {
      // A policy stored before documents were validated (p11kms < issue #5) that does not
      // parse now allows nothing in strict mode; explicit denial beats a guess.
      doc = { statements: [] };
    }
    if (parsedPolicies.size >= CACHE_LIMIT) parsedPolicies.delete(parsedPolicies.keys().next().value!);
    parsedPolicies.set(key.policy, doc);
  }
  return doc;
}
