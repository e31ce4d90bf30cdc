import { type ConditionValues, conditionsHold, globMatch } from './condition-operators';
import type { PolicyDocument, PrincipalSet, Statement } from './policy-document';
import type { Caller } from './principal';
import { matchPrincipal, type PrincipalMatch } from './principal-matching';

/** One question put to a policy: may `caller` do `action` on `resource` with these condition values? */
export interface EvaluationRequest {
  caller: Caller;
  /** e.g. kms:Decrypt */
  action: string;
  /** The key ARN, or "*" for actions that have no key (CreateKey, ListKeys, …). */
  resource: string;
  values: ConditionValues;
}

/**
 * A key policy's answer:
 * - `deny`: a Deny statement applies (explicit deny; wins over everything);
 * - `allow`: `direct` when an Allow statement names the caller (or `*`), `account` when it
 *   names only the caller's account (delegation to the account's identity policies), `none`.
 */
export interface KeyPolicyResult {
  deny: boolean;
  allow: PrincipalMatch;
}

export function evaluateKeyPolicy(policy: PolicyDocument, request: EvaluationRequest): KeyPolicyResult {
  let deny = false;
  let allow: PrincipalMatch = 'none';
  for (const statement of policy.statements) {
    if (!actionApplies(statement, request.action) || !resourceApplies(statement, request.resource)) continue;
    const match = principalApplies(statement, request.caller);
    if (match === 'none') continue;
    if (!conditionsHold(statement.conditions, request.values)) continue;
    if (statement.effect === 'Deny') deny = true;
    else if (match === 'direct' || allow === 'none') allow = match;
  }
  return { deny, allow };
}

/** Identity policies of one principal: explicit deny, and whether any statement allows. */
export function evaluateIdentityPolicies(policies: readonly PolicyDocument[], request: EvaluationRequest): { deny: boolean; allow: boolean } {
  let deny = false;
  let allow = false;
  for (const policy of policies) {
    for (const statement of policy.statements) {
      if (!actionApplies(statement, request.action) || !resourceApplies(statement, request.resource)) continue;
      if (!conditionsHold(statement.conditions, request.values)) continue;
      if (statement.effect === 'Deny') deny = true;
      else allow = true;
    }
  }
  return { deny, allow };
}

/** `kms:*`, `kms:ReEncrypt*`, `*`: IAM action names compare case-insensitively with wildcards. */
export function actionMatches(pattern: string, action: string): boolean {
  return globMatch(pattern, action, true);
}

function actionApplies(statement: Statement, action: string): boolean {
  if (statement.action) return statement.action.some((p) => actionMatches(p, action));
  return !statement.notAction!.some((p) => actionMatches(p, action));
}

/** Resource patterns match the key ARN (with wildcards); "*" in a key policy is "this key". */
export function resourceMatches(pattern: string, resource: string): boolean {
  return pattern === '*' || globMatch(pattern, resource);
}

function resourceApplies(statement: Statement, resource: string): boolean {
  if (statement.resource) return statement.resource.some((p) => resourceMatches(p, resource));
  if (statement.notResource) return !statement.notResource.some((p) => resourceMatches(p, resource));
  return true;
}

function principalApplies(statement: Statement, caller: Caller): PrincipalMatch {
  if (statement.principal) return bestMatch(statement.principal, caller, statement.effect);
  if (statement.notPrincipal) return bestMatch(statement.notPrincipal, caller, statement.effect) === 'none' ? 'direct' : 'none';
  return 'none';
}

function bestMatch(set: PrincipalSet, caller: Caller, effect: 'Allow' | 'Deny'): PrincipalMatch {
  if (set.any) return 'direct';
  let best: PrincipalMatch = 'none';
  for (const principal of set.aws) {
    const match = matchPrincipal(principal, caller);
    if (match === 'direct') return 'direct';
    if (match === 'account') best = 'account';
  }
  // A Deny naming an account applies to every principal of that account.
  return effect === 'Deny' && best === 'account' ? 'direct' : best;
}
