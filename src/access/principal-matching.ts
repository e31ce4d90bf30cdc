import type { Caller } from './principal';

/**
 * How a policy's AWS principal relates to a caller:
 * - `direct`: the principal is the caller itself (or `*`, or the role of its session);
 * - `account`: the principal is the caller's account (id or account root) and the caller
 *   is not the root: on AWS that delegates the decision to the account's IAM policies;
 * - `none`.
 */
export type PrincipalMatch = 'direct' | 'account' | 'none';

const ROOT = /^arn:aws[a-z-]*:iam::(\d{12}):root$/;
const SESSION = /^arn:(aws[a-z-]*):sts::(\d{12}):assumed-role\/([^/]+)\/.+$/;

export function accountOfPrincipal(principal: string): string | undefined {
  if (/^\d{12}$/.test(principal)) return principal;
  return /^arn:aws[a-z-]*:(?:iam|sts)::(\d{12}):/.exec(principal)?.[1];
}

/** arn:aws:iam::<acct>:root for an account id or account root ARN, else undefined. */
export function accountRootOf(principal: string): string | undefined {
  if (/^\d{12}$/.test(principal)) return `arn:aws:iam::${principal}:root`;
  const m = ROOT.exec(principal);
  return m ? `arn:aws:iam::${m[1]}:root` : undefined;
}

/** aws:PrincipalArn: an assumed-role session is represented by its role. */
export function principalArnForPolicies(principalArn: string): string {
  const m = SESSION.exec(principalArn);
  return m ? `arn:${m[1]}:iam::${m[2]}:role/${m[3]}` : principalArn;
}

/**
 * The identities a request is made by, most specific first: an assumed-role session, its
 * role and its account root; a user or role and its account root; the account root.
 */
export function identitiesOf(caller: Caller): string[] {
  const root = `arn:aws:iam::${caller.accountId}:root`;
  const arn = caller.principalArn.replace(/^arn:aws[a-z-]*:/, 'arn:aws:');
  if (arn === root) return [root];
  const role = principalArnForPolicies(arn);
  return role === arn ? [arn, root] : [arn, role, root];
}

export function isAccountRoot(principalArn: string): boolean {
  return ROOT.test(principalArn);
}

export function matchPrincipal(principal: string, caller: Caller): PrincipalMatch {
  if (principal === '*') return 'direct';
  const root = accountRootOf(principal);
  if (root) {
    if (accountOfPrincipal(principal) !== caller.accountId) return 'none';
    return isAccountRoot(caller.principalArn) ? 'direct' : 'account';
  }
  if (principal === caller.principalArn) return 'direct';
  const role = principalArnForPolicies(caller.principalArn);
  if (role !== caller.principalArn && principal.replace(/^arn:aws[a-z-]*:/, 'arn:aws:') === role.replace(/^arn:aws[a-z-]*:/, 'arn:aws:')) return 'direct';
  return 'none';
}

/** A grantee or retiring principal names the caller (exactly, as its role, or as its account root). */
export function principalNamesCaller(principal: string, caller: Caller): boolean {
  return matchPrincipal(principal, caller) !== 'none';
}
