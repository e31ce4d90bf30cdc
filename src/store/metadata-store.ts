import type { GrantRecord } from './grant-record';
import type { AliasRecord, KeyRecord, Scope } from './records';

/**
 * Reads and writes inside one transaction. Reads see the transaction's own writes.
 * When the transaction body throws (typically a KmsError), none of its writes happen.
 * Bodies must not call the token: a transaction holds the store's write order.
 */
export interface StoreTransaction {
  getKey(keyId: string): Promise<KeyRecord | undefined>;
  putKey(record: KeyRecord): void;
  deleteKey(keyId: string): void;
  getAlias(scope: Scope, aliasName: string): Promise<AliasRecord | undefined>;
  listAliases(scope: Scope): Promise<AliasRecord[]>;
  putAlias(record: AliasRecord): void;
  deleteAlias(scope: Scope, aliasName: string): void;
  getGrant(grantId: string): Promise<GrantRecord | undefined>;
  /** Grants of one key, oldest first. */
  listGrants(keyId: string): Promise<GrantRecord[]>;
  putGrant(record: GrantRecord): void;
  deleteGrant(grantId: string): void;
}

/**
 * Key metadata, aliases and deletion schedules (later grants, policies, rotations).
 * Reads return committed, durable state. `transact` resolves once its writes are durable;
 * transactions are serialisable.
 */
export interface MetadataStore {
  getKey(keyId: string): Promise<KeyRecord | undefined>;
  /** Keys of one region and account, or of every scope when none is given, oldest first. */
  listKeys(scope?: Scope): Promise<KeyRecord[]>;
  getAlias(scope: Scope, aliasName: string): Promise<AliasRecord | undefined>;
  /** Aliases of one region and account, sorted by name. */
  listAliases(scope: Scope): Promise<AliasRecord[]>;
  getGrant(grantId: string): Promise<GrantRecord | undefined>;
  /** Grants of one key, or of every key when none is given, oldest first. */
  listGrants(keyId?: string): Promise<GrantRecord[]>;
  transact<T>(body: (tx: StoreTransaction) => Promise<T> | T): Promise<T>;
  close(): Promise<void>;
}
