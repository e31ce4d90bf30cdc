import type { GrantRecord } from './grant-record';
import type { AliasRecord, AuditOutboxEntry, CreationIntent, CustomKeyStoreRecord, KeyRecord, Scope } from './records';

/**
 * Names one key record. A key id alone is not enough: the primary and replicas of a
 * multi-Region key share their id, one record per region. A KeyRecord is a KeyLocator.
 */
export interface KeyLocator {
  readonly keyId: string;
  readonly region: string;
}

export interface KeyCount {
  readonly keyState: string;
  readonly keySpec: string;
  readonly count: number;
}

/** The key an alias may name: aliases belong to a region and account. A KeyRecord is one. */
export interface AliasTarget extends KeyLocator {
  readonly accountId: string;
}

/**
 * Reads and writes inside one transaction. Reads see the transaction's own writes.
 * When the transaction body throws (typically a KmsError), none of its writes happen.
 *
 * Bodies are pure: they read through `tx`, decide, write through `tx` and return a value.
 * They never call the token, log, or change anything outside the transaction, because a
 * store may run a body more than once (a database retrying a serialization failure) and
 * only the last run counts. Optimistic checks ("is this still the version I based my work
 * on?") belong in the body: they then hold across processes sharing the store.
 */
export interface StoreTransaction {
  getKey(key: KeyLocator): Promise<KeyRecord | undefined>;
  /** Every region's record of one key id (one record unless the key is multi-Region), sorted by region. */
  listKeyRegions(keyId: string): Promise<KeyRecord[]>;
  /**
   * Writes a key record. For a multi-Region key the shared fields (MULTI_REGION_SHARED_FIELDS)
   * are copied to the key's records in the other regions in the same transaction.
   */
  putKey(record: KeyRecord): void;
  deleteKey(key: KeyLocator): void;
  getAlias(scope: Scope, aliasName: string): Promise<AliasRecord | undefined>;
  listAliases(scope: Scope): Promise<AliasRecord[]>;
  putAlias(record: AliasRecord): void;
  deleteAlias(scope: Scope, aliasName: string): void;
  getGrant(grantId: string): Promise<GrantRecord | undefined>;
  /** Grants of one key record, oldest first. */
  listGrants(key: KeyLocator): Promise<GrantRecord[]>;
  putGrant(record: GrantRecord): void;
  deleteGrant(grantId: string): void;
  getCustomKeyStore(id: string): Promise<CustomKeyStoreRecord | undefined>;
  listCustomKeyStores(): Promise<CustomKeyStoreRecord[]>;
  /**
   * The key records (every region) placed in one custom key store, read in the transaction:
   * a key recorded there concurrently makes one of the two transactions run again.
   */
  keysInCustomKeyStore(customKeyStoreId: string): Promise<KeyRecord[]>;
  putCustomKeyStore(record: CustomKeyStoreRecord): void;
  deleteCustomKeyStore(id: string): void;
  getIntent(creationId: string): Promise<CreationIntent | undefined>;
  putIntent(intent: CreationIntent): void;
  deleteIntent(creationId: string): void;
  putOutboxEntry(entry: AuditOutboxEntry): void;
  deleteOutboxEntry(id: string): void;
}

/**
 * Key metadata, aliases and deletion schedules (later grants, policies, rotations).
 * Reads return committed, durable state. `transact` resolves once its writes are durable;
 * transactions are serialisable.
 */
export interface MetadataStore {
  getKey(key: KeyLocator): Promise<KeyRecord | undefined>;
  /** Every region's record of one key id, sorted by region. */
  listKeyRegions(keyId: string): Promise<KeyRecord[]>;
  /** Keys of one region and account, or of every scope when none is given, oldest first. */
  listKeys(scope?: Scope): Promise<KeyRecord[]>;
  /**
   * How many keys (every scope) are in each key state and spec: read at every /metrics scrape,
   * so it must not list, sort or fetch every record (100,000 keys: ~45 ms of the event loop on
   * the JSON store, the whole table from PostgreSQL).
   */
  countKeys(): Promise<KeyCount[]>;
  getAlias(scope: Scope, aliasName: string): Promise<AliasRecord | undefined>;
  /** Aliases of one region and account, sorted by name. */
  listAliases(scope: Scope): Promise<AliasRecord[]>;
  /**
   * The aliases that name one key record, sorted by name: read on every authorised key use
   * (kms:ResourceAliases), so its cost must not grow with the account's other aliases.
   */
  listKeyAliases(key: AliasTarget): Promise<AliasRecord[]>;
  getGrant(grantId: string): Promise<GrantRecord | undefined>;
  /** Grants of one key record, or of every key when none is given, oldest first. */
  listGrants(key?: KeyLocator): Promise<GrantRecord[]>;
  getCustomKeyStore(id: string): Promise<CustomKeyStoreRecord | undefined>;
  /** Custom key stores of one region and account, or of every scope, oldest first. */
  listCustomKeyStores(scope?: Scope): Promise<CustomKeyStoreRecord[]>;
  /**
   * Creation intents not yet resolved (docs/key-custody.md). Reconciliation reads these
   * before the keys: a creation commits its material and drops its intent in one
   * transaction, so reading in that order never misses both.
   */
  listIntents(): Promise<CreationIntent[]>;
  /**
   * True when this process is the only writer for as long as the store is open (the JSON
   * store's directory lock): intents found at start-up then belong to dead processes.
   * A store shared by several processes answers false; their intents expire by lease.
   */
  readonly singleWriter: boolean;
  /** Audit records committed with their changes and not yet known to be in the trail, oldest first. */
  listOutboxEntries(): Promise<AuditOutboxEntry[]>;
  /**
   * Liveness of the processes sharing the store, for outbox entries: `hold` marks this process
   * alive for as long as it runs; `isAlive` tells whether another one still is. Absent when
   * this process is the only writer (every other process's entries are of dead ones).
   */
  processLiveness?: { hold(owner: string): Promise<void>; isAlive(owner: string): Promise<boolean> };
  transact<T>(body: (tx: StoreTransaction) => Promise<T> | T): Promise<T>;
  /**
   * Last-usage flushes (GetKeyLastUsage), when a store keeps them apart from its records:
   * `body` sets only `lastUsage` on keys. The JSON store writes them to a small file of their
   * own instead of rewriting the whole store every few seconds. Absent: they go through
   * transact like any write.
   */
  transactLastUsage?(body: (tx: StoreTransaction) => Promise<void> | void): Promise<void>;
  /**
   * Runs background work (sweeps) that must run in one process of the deployment: `fn` runs
   * when this process holds `task`'s lock, else nothing runs and the answer is undefined.
   * A single-process store always runs it. `term` names this holding of the lock: a new
   * number each time this process takes it (again), so a caller can tell a lock it regained
   * from one it kept. On a shared store each transaction `fn` runs proves the lock is still
   * held; once one cannot, `fn`'s pass ends there and the answer is undefined too.
   */
  asLeader<T>(task: string, fn: (term: number) => Promise<T>): Promise<T | undefined>;
  /**
   * Runs `fn` while no other process of the deployment runs a mutation of `keyId` (a store
   * shared by several processes). Without it, mutations of one key racing from several
   * processes only meet at commit, and a loser can lose every retry. Absent: one process
   * writes, and its own queue (KeyQueue) serialises.
   */
  serialiseKey?<T>(keyId: string, fn: () => Promise<T>): Promise<T>;
  /**
   * A view reading committed state around any cache, for a second look before refusing a
   * request (a store shared by several processes caches reads briefly). Absent when reads
   * are never stale.
   */
  fresh?(): MetadataStore;
  /**
   * Calls `listener` after every committed transaction, this process's or another's, with
   * the names (record-names.ts) of the records it changed; '*' when anything may have
   * changed (notifications were lost meanwhile). Returns the way to stop. Absent when this
   * process is the only writer.
   */
  watchChanges?(listener: (names: readonly string[] | '*') => void): () => void;
  /**
   * Why this store refuses every write at the moment (a database shared with a newer release
   * of p11kms that migrated it), for /ready; undefined while it accepts writes. Absent: it
   * always does.
   */
  writesRefused?(): Promise<string | undefined>;
  /** The change notifications' connection, for /metrics. Absent when there is none (one writer). */
  changeFeedState?(): ChangeFeedState;
  /** The background-task locks this process holds, for /metrics and /health. Absent when there is one process. */
  backgroundLocksState?(): BackgroundLocksState;
  /**
   * Steps that build, ahead of the first requests, what those requests would otherwise build
   * (server/warm-up.ts runs them after the service listens). Absent: nothing to build.
   */
  warmUps?(): Array<() => void>;
  /** Pooled connections destroyed because they failed their check before use, for /metrics. Absent without a pool. */
  discardedConnections?(): number;
  close(): Promise<void>;
}

/** Which background tasks this process runs for a store shared by several processes. */
export interface BackgroundLocksState {
  /** The tasks whose lock this process holds now (it runs them; no other process does). */
  held: readonly string[];
  /** How many times the session holding locks was found lost (closed, failed, or silent past its liveness check). */
  losses: number;
}

/** What a store shared by several processes says about how it hears the others' changes. */
export interface ChangeFeedState {
  /** The connection notifications arrive on is up (while it is down, nothing is cached). */
  listening: boolean;
  /** How many times it was found lost (closed, failed, or silent past its liveness deadline). */
  losses: number;
  /** Notifications received (every committed change of every process, this one's included). */
  notifications: number;
}
