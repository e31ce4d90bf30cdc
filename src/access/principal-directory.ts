import type { PolicyDocument } from './policy-document';
import type { Caller } from './principal';
import { accountOfPrincipal, accountRootOf, principalArnForPolicies } from './principal-matching';

/**
 * The principals this deployment knows (from the credentials file) and their identity
 * policies — the on-premises stand-in for IAM. A principal with no identity policies
 * listed is unrestricted on the IAM side, so only key policies and grants decide for it.
 */
export class PrincipalDirectory {
  private readonly accounts = new Set<string>();
  private readonly principals = new Set<string>();

  constructor(
    principals: Iterable<{ accountId: string; principalArn: string }>,
    private readonly identityPolicies: ReadonlyMap<string, readonly PolicyDocument[]> = new Map(),
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

  /** The caller's identity policies (an assumed-role session has its role's); undefined: unrestricted. */
  identityPoliciesOf(caller: Caller): readonly PolicyDocument[] | undefined {
    return this.identityPolicies.get(caller.principalArn) ?? this.identityPolicies.get(principalArnForPolicies(caller.principalArn));
  }
}
