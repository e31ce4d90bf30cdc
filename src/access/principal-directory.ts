import type { PolicyDocument } from './policy-document';
import type { Caller } from './principal';
import { accountOfPrincipal, accountRootOf, isAccountRoot, principalArnForPolicies } from './principal-matching';

/**
 * The principals this deployment knows (from the credentials file), their identity policies
 * and tags — the on-premises stand-in for IAM. As in IAM, a user, role or session with no
 * identity policy may do nothing that a key policy (naming it directly) or a grant does not
 * allow it; the account root has every permission on the IAM side.
 */
export class PrincipalDirectory {
  private readonly accounts = new Set<string>();
  private readonly principals = new Set<string>();

  constructor(
    principals: Iterable<{ accountId: string; principalArn: string }>,
    private readonly identityPolicies: ReadonlyMap<string, readonly PolicyDocument[]> = new Map(),
    private readonly principalTags: ReadonlyMap<string, Readonly<Record<string, string>>> = new Map(),
  ) {
    for (const p of principals) {
      this.accounts.add(p.accountId);
      this.principals.add(p.principalArn);
      // A role exists when one of its sessions does.
      this.principals.add(principalArnForPolicies(p.principalArn));
    }
  }

  static empty(): PrincipalDirectory {
    return new PrincipalDirectory([]);
  }

  /** Does a key policy principal name something that exists here (MalformedPolicyDocument otherwise)? */
  principalExists(principal: string): boolean {
    if (accountRootOf(principal)) return this.accounts.has(accountOfPrincipal(principal)!);
    return this.principals.has(principal.replace(/^arn:aws[a-z-]*:/, 'arn:aws:'));
  }

  /**
   * The caller's identity policies (an assumed-role session listed by its own ARN has those,
   * otherwise its role's); none is an empty list. Undefined for the account root, which IAM
   * policies do not restrict.
   */
  identityPoliciesOf(caller: Caller): readonly PolicyDocument[] | undefined {
    if (isAccountRoot(caller.principalArn)) return undefined;
    return this.identityPolicies.get(caller.principalArn) ?? this.identityPolicies.get(principalArnForPolicies(caller.principalArn)) ?? [];
  }

  /** aws:PrincipalTag/<key>: the tags of the user or role (a session has its role's). */
  principalTagsOf(caller: Caller): Readonly<Record<string, string>> {
    return this.principalTags.get(caller.principalArn) ?? this.principalTags.get(principalArnForPolicies(caller.principalArn)) ?? {};
  }
}
