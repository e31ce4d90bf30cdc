import { Pool, type PoolClient, type QueryResult } from 'pg';
import type { Logger } from 'pino';
import { BackgroundLockLostError, KmsError, StoreNotCommittedError, StoreUnavailableError } from '../../errors';
import type { GrantRecord } from '../grant-record';
import type { AliasTarget, BackgroundLocksState, ChangeFeedState, KeyCount, KeyLocator, MetadataStore, StoreTransaction } from '../metadata-store';
import type { AliasRecord, AuditOutboxEntry, CreationIntent, CustomKeyStoreRecord, KeyRecord, Scope } from '../records';
import { CHANGE_CHANNEL, changePayload, ReadCache } from './change-feed';
import { CheckedPool, IDLE_CHECK_AFTER_MS, IDLE_CHECK_TIMEOUT_MS, type IdleCheck } from './checked-pool';
import { BackgroundLocks, lockId } from './background-lock';
import { announceWrites, commitOutcome } from './commit-outcome';
import { holdFencedCommit } from './fence-test-hold';
import { asStoreFailure, deadlined, deadlineOptions, isLostConnection } from './store-failures';
import { countKeysIn, type Doc, listAliasesIn, listCustomKeyStoresIn, listGrantsIn, listKeyAliasesIn, listKeysIn, type Queryable, readAlias, readCustomKeyStore, readGrant, readKey, readKeyRegions } from './reads';
import { aliasListName, aliasName, grantListName, grantName, keyAliasesName, keyName, keyRegionsName } from '../record-names';
import { holdClient } from './held-client';
import { migrateSchema, newerSchemaMessage } from './schema';
import { PostgresTransaction } from './transaction';

// Importers of the store (open-store, the store contract tests) keep one module to import from.
export { grantNameFingerprint } from './transaction';
export { lockId } from './background-lock';

/** serialization_failure, deadlock_detected, unique_violation: the body runs again and decides anew. */
const RETRYABLE = new Set(['40001', '40P01', '23505']);
const MAX_ATTEMPTS = 40;

/** A body that ran to its COMMIT: its value, and the cache names its writes touch. */
type Ran<T> = { value: T; changed: string[] };
/**
 * One try of a transaction: its value; a lost race (run again); its connection lost before
 * COMMIT was sent (run again on another); or lost after, with its id to ask about.
 */
type Attempted<T> = { value: T } | { lost: unknown } | { connectionLost: unknown } | { commitAnswerLost: unknown; ran: Ran<T>; xid: string };

/**
 * The metadata store on PostgreSQL, for several p11kms processes and hosts on one token.
 *
 * - Transactions are SERIALIZABLE. Bodies are pure (reads, then buffered writes), so a body
 *   that loses a race (serialization failure, deadlock, or a uniqueness the database
 *   enforces: alias names, grant Name idempotency, key ids) is simply run again and sees the
 *   winner's state: "check inside the transaction" holds across processes.
 * - Request-path reads are cached briefly and invalidated through LISTEN/NOTIFY (ReadCache);
 *   `fresh()` reads around the cache, for a second look before refusing a request.
 * - Background work takes a PostgreSQL advisory lock per task (`asLeader`), held by one
 *   process for its lifetime; when that process dies its session ends and the lock is free.
 *   The session holding them is checked for liveness like the change feed: a process whose
 *   session ended without it hearing so (a failover, a silent network) steps down within
 *   about 10 s instead of running the tasks beside the process that took the locks over.
 *   Before that, the task's own writes fence it off: each transaction a task runs proves,
 *   inside itself, that the session still holds the lock (pg_locks), or rolls back, ends the
 *   task's pass and steps the process down; a process taking the lock first waits for the
 *   transactions that passed that check under the previous holder (the fence lock).
 * - A pooled connection idle past a short window is checked before use (CheckedPool): one
 *   that died idle without a word is destroyed instead of holding a request up for the
 *   whole store deadline.
 */
/** Per-key mutation lock sessions per process (mutations of more keys at once wait for one). */
const KEY_LOCK_SESSIONS = 4;
/** storeCallTimeoutSeconds' default, for stores opened outside the service (store migrate, tests). */
const DEFAULT_CALL_TIMEOUT_MS = 30_000;

export class PostgresStore implements MetadataStore {
  /** Several processes write: intents found at start-up may belong to a live process (they expire by lease). */
  readonly singleWriter = false;
  private closed = false;
  /** The background-task locks and the session holding them. */
  private readonly locks: BackgroundLocks;
  /** The newer schema version this process last said it refuses writes for (said once per version). */
  private refusalLogged: number | undefined;
  /** Reads outside transactions: the pool, a passed deadline or a lost database reported as asStoreFailure says. */
  private readonly reader: Queryable;
  /**
   * How often a read or a transaction whose connection was found lost runs again on another:
   * each try drops one dead pooled connection, so after as many as the pool holds the next
   * is a new one.
   */
  private readonly reconnects: number;

  private constructor(
    private readonly pool: CheckedPool,
    /**
     * Sessions holding per-key mutation locks, apart from `pool`: a mutation holds one while
     * its transactions take others from `pool`, so holders can never starve them.
     */
    private readonly keyLocks: CheckedPool,
    private readonly cache: ReadCache,
    private readonly log: Logger,
    /** The newest schema version this code knows (its last migration). */
    private readonly schemaVersion: number,
  ) {
    this.reconnects = pool.pool.options.max;
    this.locks = new BackgroundLocks(pool, log);
    this.reader = { query: ((text: string, values?: unknown[]) => this.read(text, values)) as Queryable['query'] };
  }

  /**
   * One read statement. A connection found lost (it died while idle in the pool: a failover,
   * a firewall, a terminated session) is dropped and the read runs again on another: a read
   * has no effect to repeat. Failing to connect is not retried (the database refuses), nor a
   * passed deadline (another wait as long would only double it).
   */
  private async read(text: string, values?: unknown[]): Promise<QueryResult> {
    for (let lost = 0; ; lost++) {
      const held = await holdClient(this.pool, this.log, 'read');
      try {
        const result = await deadlined(held.client.query(text, values));
        held.release();
        return result;
      } catch (err) {
        held.release(true);
        if (!isLostConnection(err) || lost >= this.reconnects) throw err;
      }
    }
  }

  static async open(url: string, log: Logger, options: { poolSize?: number; callTimeoutMs?: number; idleCheck?: IdleCheck } = {}): Promise<PostgresStore> {
    const callTimeoutMs = options.callTimeoutMs ?? DEFAULT_CALL_TIMEOUT_MS;
    const deadlines = deadlineOptions(callTimeoutMs);
    const idleCheck = options.idleCheck ?? { afterIdleMs: IDLE_CHECK_AFTER_MS, timeoutMs: IDLE_CHECK_TIMEOUT_MS };
    const pool = new CheckedPool(new Pool({ connectionString: url, max: options.poolSize ?? 10, ...deadlines }), idleCheck, callTimeoutMs, log, 'store');
    // An idle client losing its server must not take the process down; the next query reconnects.
    pool.pool.on('error', (err) => log.warn({ err: err.message }, 'PostgreSQL connection lost'));
    const keyLocks = new CheckedPool(new Pool({ connectionString: url, max: KEY_LOCK_SESSIONS, ...deadlines }), idleCheck, callTimeoutMs, log, 'key locks');
    keyLocks.pool.on('error', (err) => log.warn({ err: err.message }, 'PostgreSQL connection lost'));
    try {
      const schema = await migrateSchema(pool.pool, log);
      if (schema.from !== schema.to) log.info(schema, 'PostgreSQL schema migrated');
      const cache = new ReadCache({ connectionString: url, connectionTimeoutMillis: deadlines.connectionTimeoutMillis, keepAlive: true }, log);
      await cache.start();
      return new PostgresStore(pool, keyLocks, cache, log, schema.to);
    } catch (err) {
      await keyLocks.end().catch(() => undefined);
      await pool.end().catch(() => undefined);
      throw err;
    }
  }

  getKey(key: KeyLocator): Promise<KeyRecord | undefined> {
    return this.cache.get(keyName(key), () => readKey(this.reader, key));
  }

  async listKeyRegions(keyId: string): Promise<KeyRecord[]> {
    return [...(await this.cache.get(keyRegionsName(keyId), () => readKeyRegions(this.reader, keyId)))];
  }

  listKeys(scope?: Scope): Promise<KeyRecord[]> {
    return listKeysIn(this.reader, scope);
  }

  countKeys(): Promise<KeyCount[]> {
    return countKeysIn(this.reader);
  }

  getAlias(scope: Scope, name: string): Promise<AliasRecord | undefined> {
    return this.cache.get(aliasName(scope, name), () => readAlias(this.reader, scope, name));
  }

  async listAliases(scope: Scope): Promise<AliasRecord[]> {
    return [...(await this.cache.get(aliasListName(scope), () => listAliasesIn(this.reader, scope)))];
  }

  async listKeyAliases(key: AliasTarget): Promise<AliasRecord[]> {
    return [...(await this.cache.get(keyAliasesName(key), () => listKeyAliasesIn(this.reader, key)))];
  }

  getGrant(grantId: string): Promise<GrantRecord | undefined> {
    return this.cache.get(grantName(grantId), () => readGrant(this.reader, grantId));
  }

  async listGrants(key?: KeyLocator): Promise<GrantRecord[]> {
    if (key === undefined) return listGrantsIn(this.reader, undefined);
    return [...(await this.cache.get(grantListName(key), () => listGrantsIn(this.reader, key)))];
  }

  // Custom key stores are few and rarely read: straight from the database, never cached.
  getCustomKeyStore(id: string): Promise<CustomKeyStoreRecord | undefined> {
    return readCustomKeyStore(this.reader, id);
  }

  listCustomKeyStores(scope?: Scope): Promise<CustomKeyStoreRecord[]> {
    return listCustomKeyStoresIn(this.reader, scope);
  }

  /** Unresolved creation intents, oldest first (never cached: reconciliation needs committed state). */
  async listIntents(): Promise<CreationIntent[]> {
    const { rows } = await this.reader.query<Doc<CreationIntent>>('SELECT doc FROM p11kms_intents ORDER BY created_at, creation_id');
    return rows.map((r) => r.doc);
  }

  async listOutboxEntries(): Promise<AuditOutboxEntry[]> {
    const { rows } = await this.reader.query<Doc<AuditOutboxEntry>>('SELECT doc FROM p11kms_audit_outbox ORDER BY created_at, id');
    return rows.map((r) => r.doc);
  }

  /**
   * A session-level advisory lock per process, on the session holding its background-task
   * locks: it ends with the process (kill -9 ends the session), so another process that can
   * take it knows the holder is dead.
   */
  get processLiveness(): NonNullable<MetadataStore['processLiveness']> {
    return this.locks.processLiveness;
  }

  /** The same store reading around the cache (committed state at the moment of the read). */
  fresh(): MetadataStore {
    const pool = this.reader;
    const view: MetadataStore = {
      getKey: (key) => readKey(pool, key),
      listKeyRegions: (keyId) => readKeyRegions(pool, keyId),
      listKeys: (scope) => listKeysIn(pool, scope),
      countKeys: () => countKeysIn(pool),
      getAlias: (scope, name) => readAlias(pool, scope, name),
      listAliases: (scope) => listAliasesIn(pool, scope),
      listKeyAliases: (key) => listKeyAliasesIn(pool, key),
      getGrant: (grantId) => readGrant(pool, grantId),
      listGrants: (key) => listGrantsIn(pool, key),
      getCustomKeyStore: (id) => readCustomKeyStore(pool, id),
      listCustomKeyStores: (scope) => listCustomKeyStoresIn(pool, scope),
      listIntents: () => this.listIntents(),
      listOutboxEntries: () => this.listOutboxEntries(),
      singleWriter: false,
      transact: (body) => this.transact(body),
      asLeader: (task, fn) => this.asLeader(task, fn),
      serialiseKey: (keyId, fn) => this.serialiseKey(keyId, fn),
      close: async () => undefined,
    };
    return view;
  }

  watchChanges(listener: (names: readonly string[] | '*') => void): () => void {
    return this.cache.watch(listener);
  }

  changeFeedState(): ChangeFeedState {
    return this.cache.state();
  }

  backgroundLocksState(): BackgroundLocksState {
    return this.locks.state();
  }

  discardedConnections(): number {
    return this.pool.discarded + this.keyLocks.discarded;
  }

  async transact<T>(body: (tx: StoreTransaction) => Promise<T> | T): Promise<T> {
    for (let attempt = 1, lost = 0; ; attempt++) {
      const held = await holdClient(this.pool, this.log, 'transaction');
      let outcome: Attempted<T>;
      try {
        outcome = await this.attempt(held.client, body);
      } catch (err) {
        // A failure without a SQL state may have left the connection unusable: drop it.
        held.release(!(err instanceof KmsError || err instanceof BackgroundLockLostError) && (err as { code?: string }).code === undefined);
        throw err;
      }
      if ('connectionLost' in outcome) {
        // Lost before its COMMIT was sent: it cannot have committed, and bodies are pure
        // (they already run again after a serialisation failure). Again on another connection.
        held.release(true);
        if (++lost > this.reconnects) throw new StoreNotCommittedError((outcome.connectionLost as Error).message, { cause: outcome.connectionLost });
        continue;
      }
      if ('commitAnswerLost' in outcome) {
        // Asked on another connection: this one, dead, is given back first (a pool of one).
        held.release(true);
        const settled = await this.afterLostCommit(outcome.ran, outcome.xid, outcome.commitAnswerLost);
        if (settled !== 'aborted') return settled.value;
        // Nothing was written: as for a connection lost before its COMMIT was sent, the pure
        // body runs again on another connection instead of failing the call.
        if (++lost > this.reconnects) throw new StoreNotCommittedError((outcome.commitAnswerLost as Error).message, { cause: outcome.commitAnswerLost });
        continue;
      }
      held.release();
      if ('value' in outcome) return outcome.value;
      if (attempt >= MAX_ATTEMPTS) throw outcome.lost;
      // A little jitter so the same two bodies do not collide again in lockstep.
      await new Promise((r) => setTimeout(r, Math.random() * Math.min(50, attempt * 5)));
    }
  }

  private async attempt<T>(client: PoolClient, body: (tx: StoreTransaction) => Promise<T> | T): Promise<Attempted<T>> {
    let commitSent = false;
    let ran: Ran<T> | undefined;
    /** The transaction's id, once its writes took one: what is asked about if its COMMIT's answer is lost. */
    let xid: string | null = null;
    try {
      // The schema version is read inside the transaction (one round trip with BEGIN): a
      // newer release may have migrated the database since this process started, and this
      // code would write records in a shape the new schema no longer means. Migrations run
      // SERIALIZABLE too, so a migration committing meanwhile serialises with this
      // transaction: before it (this read sees its version) or after it (its statements read
      // what this one wrote, or PostgreSQL rolls one of the two back).
      const [, schema] = (await client.query('BEGIN ISOLATION LEVEL SERIALIZABLE; SELECT max(version) AS v FROM p11kms_schema')) as unknown as [QueryResult, QueryResult<{ v: number | null }>];
      this.refuseNewerSchema(schema.rows[0].v ?? 0);
      const tx = new PostgresTransaction(client);
      const value = await body(tx);
      const changed = await tx.write();
      if ((await this.locks.proveHeld(client)) && changed.length > 0) await holdFencedCommit(this.log);
      const notify = changed.length > 0 ? { channel: CHANGE_CHANNEL, payload: changePayload(changed) } : undefined;
      ran = { value, changed };
      xid = await announceWrites(client, notify, tx.buffersWrites());
      commitSent = true;
      await client.query('COMMIT');
      return this.committed(ran);
    } catch (err) {
      const failure = asStoreFailure(err);
      // A statement past its deadline still occupies the connection (a ROLLBACK would wait
      // behind it), and a lost connection takes none. The caller destroys the connection, and
      // the server rolls back with it.
      if (!(failure instanceof StoreUnavailableError)) await client.query('ROLLBACK').catch(() => undefined);
      if (RETRYABLE.has((err as { code?: string }).code ?? '')) return { lost: err };
      if (isLostConnection(failure) && !commitSent) return { connectionLost: failure };
      // A COMMIT whose answer was lost may have committed: it is never run again, but asked about.
      if (isLostConnection(failure) && ran !== undefined && xid !== null) return { commitAnswerLost: failure, ran, xid };
      throw failure;
    }
  }

  /** This node reads its own writes at once; the others when the notification arrives. */
  private committed<T>(ran: Ran<T>): { value: T } {
    if (ran.changed.length > 0) this.cache.invalidate(ran.changed);
    return { value: ran.value };
  }

  /**
   * The connection was lost after COMMIT was sent: PostgreSQL, asked on another connection,
   * tells whether it committed. Committed, the call goes on as if the answer had arrived;
   * aborted, nothing was written (the transaction runs again); unknown, the failure stands as
   * it is (the change may or may not have been made).
   */
  private async afterLostCommit<T>(ran: Ran<T>, xid: string, failure: unknown): Promise<{ value: T } | 'aborted'> {
    const outcome = await commitOutcome(this.reader, xid, this.pool.pool.options.query_timeout ?? DEFAULT_CALL_TIMEOUT_MS);
    if (outcome === 'committed') {
      this.log.warn({ xid, err: (failure as Error).message }, 'the answer to a COMMIT was lost with its connection; PostgreSQL says it committed, so the call succeeds');
      return this.committed(ran);
    }
    if (outcome === 'aborted') {
      this.log.warn({ xid, err: (failure as Error).message }, 'the answer to a COMMIT was lost with its connection; PostgreSQL says it aborted, so nothing was written: running it again');
      return 'aborted';
    }
    this.log.error({ xid, err: (failure as Error).message, reason: outcome.unknown }, 'the answer to a COMMIT was lost with its connection, and whether it committed is unknown; the call fails, and its change stands if it was made');
    throw failure;
  }

  /**
   * A database migrated past what this code knows: every write is refused (nothing was
   * written; the caller may undo what it made), and the operator is told once what to do.
   * Reads go on: a migration keeps the records the previous release reads readable.
   */
  private refuseNewerSchema(version: number): void {
    if (version <= this.schemaVersion) return;
    const why = newerSchemaMessage(version, this.schemaVersion);
    if (this.refusalLogged !== version) {
      this.refusalLogged = version;
      this.log.error({ schemaVersion: version, known: this.schemaVersion }, `${why}: this process refuses every change until it runs that version (upgrade p11kms on this node and restart it)`);
    }
    throw new KmsError('KMSInternalException', 'An internal error occurred.', { internalDetail: `${why}; writes refused` });
  }

  async writesRefused(): Promise<string | undefined> {
    const { rows } = await this.reader.query<{ v: number | null }>('SELECT max(version) AS v FROM p11kms_schema');
    const version = rows[0].v ?? 0;
    return version > this.schemaVersion ? `${newerSchemaMessage(version, this.schemaVersion)}; writes refused until this node runs it` : undefined;
  }

  asLeader<T>(task: string, fn: (term: number) => Promise<T>): Promise<T | undefined> {
    return this.closed ? Promise.resolve(undefined) : this.locks.asLeader(task, fn);
  }

  /**
   * A session-level advisory lock per key, taken before the mutation's first read: each
   * process's mutations of a key queue behind the others' instead of meeting at commit. A
   * process that dies holding it loses its session, and the lock with it.
   */
  async serialiseKey<T>(keyId: string, fn: () => Promise<T>): Promise<T> {
    const lock = lockId(`key:${keyId}`);
    const held = await this.lockSession(lock);
    try {
      return await fn();
    } finally {
      // Ending the session frees the lock too: a failed unlock only costs the connection.
      const unlocked = await held.client.query('SELECT pg_advisory_unlock($1)', [lock]).then(
        () => true,
        () => false,
      );
      held.release(!unlocked);
    }
  }

  /** A key-lock session holding `lock`; a session found lost (its lock went with it) is replaced. */
  private async lockSession(lock: string): Promise<{ client: PoolClient; release(destroy?: boolean): void }> {
    for (let lost = 0; ; lost++) {
      const held = await holdClient(this.keyLocks, this.log, 'key mutation lock');
      try {
        await held.client.query('SELECT pg_advisory_lock($1)', [lock]);
        return held;
      } catch (err) {
        held.release(true);
        const failure = asStoreFailure(err);
        if (!isLostConnection(failure) || lost > KEY_LOCK_SESSIONS) throw failure;
      }
    }
  }

  async close(): Promise<void> {
    this.closed = true;
    // Marks the locks closed at once: no lock is taken, nor its session opened again, meanwhile.
    const locksClosed = this.locks.close();
    await this.cache.stop();
    await locksClosed;
    await this.keyLocks.end();
    await this.pool.end();
  }
}
