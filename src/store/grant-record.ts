import type { GrantOperation } from '../model/generated/types';

/** A grant's encryption-context constraint (at most one of the two, as AWS allows either). */
export interface GrantConstraintsRecord {
  readonly encryptionContextEquals?: Readonly<Record<string, string>>;
  readonly encryptionContextSubset?: Readonly<Record<string, string>>;
}

/**
 * One grant on one key. Immutable: a grant is created, then retired or revoked (deleted);
 * it is never changed in place.
 */
export interface GrantRecord {
  /** 64 hex characters, as AWS. */
  readonly grantId: string;
  readonly keyId: string;
  /** The key's account and region. */
  readonly accountId: string;
  readonly region: string;
  readonly name?: string;
  readonly createdAt: number;
  readonly granteePrincipal: string;
  readonly retiringPrincipal?: string;
  /** arn:aws:iam::<account>:root of the account that created the grant. */
  readonly issuingAccount: string;
  readonly operations: readonly GrantOperation[];
  readonly constraints?: GrantConstraintsRecord;
  /** The grant token handed out by CreateGrant (opaque to clients). */
  readonly grantToken: string;
}
