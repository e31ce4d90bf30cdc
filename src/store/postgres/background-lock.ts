import { AsyncLocalStorage } from 'node:async_hooks';
import { createHash } from 'node:crypto';
import * as os from 'node:os';
import type { PoolClient, QueryResult } from 'pg';
import type { Logger } from 'pino';
import { BackgroundLockLostError } from '../../errors';
import type { BackgroundLocksState } from '../metadata-store';
import type { CheckedPool } from './checked-pool';
import { checkLiveness } from './connection-liveness';
import { holdClient } from './held-client';
import { queryInTurn } from './query-in-turn';

/**
 * The session holding this process's background-task locks, as PostgreSQL knows it: its
 * backend's pid, and when that backend started (a pid is reused once its backend ended; the
 * pair is not).
 */
export interface LockSession {
  pid: number;
  /** backend_start in microseconds since the epoch, as text (exact). */
  started: string;
}

/** One holding of a task's lock by this process: from taking it to losing it. */
export interface LockTerm {
  task: string;
  /** The advisory lock's key (lockId(task)). */
  lock: string;
  /** The key of the task's fence lock (fenceLockId(task)): its duty transactions hold it shared until they end. */
  fence: string;
  /** A new number each time this process takes the lock: a pass belongs to one holding. */
  term: number;
  session: LockSession;
  /** The lock session's connection (its opening, as the store keeps it). */
  opening: Promise<PoolClient>;
  client: PoolClient;
}

/** lock_timeout passed (lock_not_available). */
const LOCK_NOT_AVAILABLE = '55P03';
/** How long a new holder waits for the previous holder's fenced transactions when the pool sets no statement deadline. */
const FENCE_WAIT_FALLBACK_MS = 30_000;

/** PostgreSQL keeps application_name to 63 bytes. */
const APPLICATION_NAME_BYTES = 63;

/**
 * What pg_stat_activity shows as the lock session's application_name: which process of
 * which host holds (or asks for) the cluster's background-work lock. The pid comes first: a
 * long host name is what gets cut.
 */
export function lockSessionName(): string {
  const name = `p11kms background-work lock: pid ${process.pid} on ${os.hostname()}`;
  const bytes = Buffer.from(name);
  return bytes.length <= APPLICATION_NAME_BYTES ? name : bytes.subarray(0, APPLICATION_NAME_BYTES).toString().replace(/\uFFFD$/, '');
}

const STARTED_MICROS = '(extract(epoch FROM backend_start) * 1000000)::bigint::text';

/** Names the lock session (application_name) and says which backend it is, in one round trip. */
export async function nameLockSession(client: PoolClient): Promise<LockSession> {
  const { rows } = await queryInTurn<{ pid: number; started: string }>(
    client,
    `SELECT set_config('application_name', $1, false), pg_backend_pid() AS pid, (SELECT ${STARTED_MICROS} FROM pg_stat_activity WHERE pid = pg_backend_pid()) AS started`,
    [lockSessionName()],
  );
  return { pid: rows[0].pid, started: rows[0].started };
}

/** A whole number written into a statement's text (the fence's two statements go in one round trip, which takes no parameters). */
function integer(value: string | number): string {
  const text = String(value);
  if (!/^-?\d+$/.test(text)) throw new Error(`not an integer: ${text}`);
  return text;
}

/**
 * Run inside a duty's transaction, just before its COMMIT: whether the session of `term`
 * holds its lock at this moment. PostgreSQL frees a session's advisory locks when the
 * session ends, whether or not its client heard so; a lock held by a backend of the same pid
 * that started at another time is another session's.
 *
 * First the transaction takes the task's fence lock, shared, until it ends: a later holder
 * of the task's lock takes the fence lock exclusively before running anything
 * (waitForEarlierHolders), so it waits for every transaction that passed this check while
 * the lock was still this session's. Taken before the check, never after: a transaction
 * whose check comes after the session ended finds the lock gone, and one whose check came
 * before holds the fence lock already. The two statements go in one round trip.
 */
export async function lockStillHeld(client: PoolClient, term: LockTerm): Promise<boolean> {
  const results = (await client.query(
    `SELECT pg_advisory_xact_lock_shared(${integer(term.fence)});
     SELECT 1 FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid
      WHERE l.locktype = 'advisory' AND l.granted AND l.pid = ${integer(term.session.pid)} AND l.objsubid = 1
        AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())
        AND ((l.classid::bigint << 32) | l.objid::bigint) = ${integer(term.lock)}::bigint
        AND (extract(epoch FROM a.backend_start) * 1000000)::bigint = ${integer(term.session.started)}::bigint`,
  )) as unknown as QueryResult[];
  return results[1].rows.length === 1;
}

/** The key of `task`'s fence lock (another key than its own lock: the holder's session holds that one exclusively). */
export function fenceLockId(task: string): string {
  return lockId(`fence:${task}`);
}

export function lockId(name: string): string {
  // A stable signed 64-bit number per name, as pg_advisory_lock(bigint) takes (tests find a
  // lock's holder in pg_locks by it).
  return createHash('sha256').update(`p11kms:${name}`).digest().readBigInt64BE(0).toString();
}

/**
 * This process's background-task locks, on one session of their own: which tasks it holds
 * and under which holding (LockTerm), the fence its passes' transactions prove, the
 * session's liveness check, and this process's liveness lock on the same session.
 */
export class BackgroundLocks {
  /** The session holding this process's advisory locks: one, however many tasks ask at once. */
  private leaseClient: Promise<PoolClient> | undefined;
  /** The tasks whose lock this process holds, each with the holding its passes run under. */
  private readonly leases = new Map<string, LockTerm>();
  /** Holdings so far (a LockTerm's number). */
  private terms = 0;
  /** Which backend each lock session is (its connection's identity for the fence). */
  private readonly lockSessions = new WeakMap<PoolClient, LockSession>();
  /**
   * The holding a task's pass runs under, for its transactions to prove. Enabled only while a
   * pass runs (AsyncLocalStorage makes Node track every promise while enabled).
   */
  private readonly duty = new AsyncLocalStorage<LockTerm>();
  private dutiesRunning = 0;
  /** Asks for a task's lock under way (asLeader calls at once share one). */
  private readonly asking = new Map<string, Promise<LockTerm | undefined>>();
  /** Times the session holding background-task locks was found lost while it held some. */
  private leaseLosses = 0;
  private stopLeaseLivenessCheck: (() => void) | undefined;
  /** This process's name on audit outbox entries, once it holds its liveness lock. */
  private livenessOwner: string | undefined;
  private closed = false;

  constructor(
    private readonly pool: CheckedPool,
    private readonly log: Logger,
  ) {}

  /**
   * A session-level advisory lock per process, on the session holding its background-task
   * locks: it ends with the process (kill -9 ends the session), so another process that can
   * take it knows the holder is dead. Taken again when that session is opened again.
   */
  readonly processLiveness = {
    hold: async (owner: string): Promise<void> => {
      this.livenessOwner = owner;
      this.leaseClient ??= this.openLeaseClient();
      await this.leaseClient;
    },
    isAlive: async (owner: string): Promise<boolean> => {
      if (owner === this.livenessOwner) return true;
      const opening = (this.leaseClient ??= this.openLeaseClient());
      const client = await opening;
      const lock = lockId(`process:${owner}`);
      try {
        const { rows } = await queryInTurn<{ ok: boolean }>(client, 'SELECT pg_try_advisory_lock($1) AS ok', [lock]);
        if (!rows[0].ok) return true;
        await queryInTurn(client, 'SELECT pg_advisory_unlock($1)', [lock]);
        return false;
      } catch (err) {
        // The lock session was found lost while it asked (the step-down said why): a duty
        // asking (the audit outbox's delivery of others' entries) ends its pass.
        if (this.leaseClient !== opening && this.duty.getStore() !== undefined) throw new BackgroundLockLostError('the background-work lock session was lost');
        throw err;
      }
    },
  };

  state(): BackgroundLocksState {
    return { held: [...this.leases.keys()], losses: this.leaseLosses };
  }

  async asLeader<T>(task: string, fn: (term: number) => Promise<T>): Promise<T | undefined> {
    if (this.closed) return undefined;
    const term = this.leases.get(task) ?? (await this.askForLock(task));
    if (term === undefined) return undefined;
    this.dutiesRunning++;
    try {
      return await this.duty.run(term, () => fn(term.term));
    } catch (err) {
      // A transaction of the pass found the lock gone: the pass ended there, as if this
      // process had not been the leader (it no longer is; proveHeld stepped it down).
      if (err instanceof BackgroundLockLostError) return undefined;
      throw err;
    } finally {
      if (--this.dutiesRunning === 0) this.duty.disable();
    }
  }

  /** Takes `task`'s lock if free; callers asking at once share one ask (the lock is re-entrant within a session). */
  private askForLock(task: string): Promise<LockTerm | undefined> {
    const asking = this.asking.get(task) ?? this.takeLock(task).finally(() => this.asking.delete(task));
    this.asking.set(task, asking);
    return asking;
  }

  private async takeLock(task: string): Promise<LockTerm | undefined> {
    try {
      const opening = (this.leaseClient ??= this.openLeaseClient());
      const client = await opening;
      // Closed while connecting: close() releases the session.
      if (this.closed) return undefined;
      // Tasks asking at once, the liveness check and the audit outbox share this session: in turn.
      const { rows } = await queryInTurn<{ ok: boolean }>(client, 'SELECT pg_try_advisory_lock($1) AS ok', [lockId(task)]);
      // The session was found lost meanwhile: its lock went with it.
      if (!rows[0].ok || this.leaseClient !== opening) return undefined;
      if (!(await this.waitForEarlierHolders(task, client))) return undefined;
      if (this.leaseClient !== opening || this.closed) return undefined;
      const term = { task, lock: lockId(task), fence: fenceLockId(task), term: ++this.terms, session: this.lockSessions.get(client)!, opening, client };
      this.leases.set(task, term);
      this.log.info({ task }, 'this process now runs this background task for the cluster');
      return term;
    } catch (err) {
      this.log.warn({ task, err: (err as Error).message }, 'could not take the background-task lock');
      return undefined;
    }
  }

  /**
   * Just after taking `task`'s lock, before running anything: every transaction of an earlier
   * holder (another process, or this one's previous session) that passed its fence check
   * while that holder's session held the lock has ended, committed or not. Such a transaction
   * holds the task's fence lock shared (lockStillHeld), so taking it exclusively waits for
   * them; it is let go at once (one statement, its own transaction). Without this, a holder
   * whose session ended between its fence check and its COMMIT would commit beside this
   * one's first duties. On a pooled connection, not the lock session: the session's liveness
   * check must not queue behind the wait. Bounded by lock_timeout, set by the server (a
   * waiter the client gave up on would otherwise stay queued ahead of every later duty
   * transaction): not over in time, the lock is let go and asked for again later.
   */
  private async waitForEarlierHolders(task: string, lockSession: PoolClient): Promise<boolean> {
    const fence = fenceLockId(task);
    let held: Awaited<ReturnType<typeof holdClient>> | undefined;
    try {
      held = await holdClient(this.pool, this.log, 'background-task fence');
      const { rows } = await held.client.query<{ free: boolean }>('SELECT pg_try_advisory_xact_lock($1) AS free', [fence]);
      if (!rows[0].free) {
        this.log.info({ task }, "this process took the background-task lock and waits for the previous holder's transactions that passed their fence to end");
        const queryTimeout = this.pool.pool.options.query_timeout ?? FENCE_WAIT_FALLBACK_MS;
        await held.client.query(`BEGIN; SET LOCAL lock_timeout = ${integer(Math.max(1, Math.floor(queryTimeout * 0.75)))}; SELECT pg_advisory_xact_lock(${integer(fence)}); COMMIT`);
      }
      held.release();
      return true;
    } catch (err) {
      held?.release(true);
      const why = (err as { code?: string }).code === LOCK_NOT_AVAILABLE ? "the previous holder's transactions that passed their fence did not end in time" : "could not wait for the previous holder's transactions that passed their fence";
      this.log.warn({ task, err: (err as Error).message }, `${why}; this process lets the background-task lock go and asks for it again later`);
      await queryInTurn(lockSession, 'SELECT pg_advisory_unlock($1)', [lockId(task)]).catch(() => undefined);
      return false;
    }
  }

  /**
   * In a transaction of a background task's pass (asLeader), just before its COMMIT: the
   * lock it runs under must still be this process's, held by the same session, or nothing
   * commits. A session that ended without this process hearing so (a failover, a silent
   * network) freed the lock, and another node may be running the same task: without this
   * the pass would write beside it until the liveness check noticed (up to about 10 s). A
   * session ending after the check and before the COMMIT does not let the two overlap
   * either: the next holder waits for this transaction before running anything
   * (waitForEarlierHolders). True when the transaction is a duty's (and proved its lock).
   */
  async proveHeld(client: PoolClient): Promise<boolean> {
    const term = this.duty.getStore();
    if (term === undefined) return false;
    // Stepped down already (or holding the lock anew): a pass of an earlier holding stops.
    if (this.leases.get(term.task) !== term) throw new BackgroundLockLostError(`the ${term.task} lock this pass ran under is no longer held`);
    if (await lockStillHeld(client, term)) return true;
    this.stepDown(term, `a ${term.task} transaction found that this process's lock session (backend pid ${term.session.pid}) no longer holds the lock: the session ended on the server`);
    throw new BackgroundLockLostError(`the ${term.task} lock is no longer held by this process`);
  }

  /** The lock of `term` was found gone: the process steps down as when its session is found lost. */
  private stepDown(term: LockTerm, why: string): void {
    // A term is taken only on the current session (takeLock), and every term goes with it.
    if (this.leases.get(term.task) === term) this.dropLeases(term.opening, term.client, new Error(why));
  }

  async close(): Promise<void> {
    this.closed = true;
    const leaseClient = this.leaseClient;
    this.leaseClient = undefined;
    this.stopLeaseLivenessCheck?.();
    (await leaseClient?.catch(() => undefined))?.release(true);
  }

  private openLeaseClient(): Promise<PoolClient> {
    // Checked like any pooled connection: one that died idle would hold the lock statement up
    // for the whole store deadline.
    const opening = this.pool.connect().then(async (client) => {
      // Leases live as long as this session: if it ends, another process takes the tasks over.
      client.on('error', (err: Error) => this.dropLeases(opening, client, err));
      client.on('end', () => this.dropLeases(opening, client, new Error('the connection was closed')));
      try {
        // Named in pg_stat_activity (which process holds the cluster's lock), and known by its
        // backend for the fence (proveHeld).
        this.lockSessions.set(client, await nameLockSession(client));
        if (this.livenessOwner !== undefined) await queryInTurn(client, 'SELECT pg_advisory_lock($1)', [lockId(`process:${this.livenessOwner}`)]);
      } catch (err) {
        client.release(true);
        throw err;
      }
      // A session ended without this process hearing so (its FIN lost with a failed-over host
      // or a silent network) freed the locks for the others all the same: without this check
      // this process would go on running the tasks beside their new holder.
      this.stopLeaseLivenessCheck?.();
      this.stopLeaseLivenessCheck = checkLiveness(client, 'background-task lock', (err) => this.dropLeases(opening, client, err));
      return client;
    });
    // A failed connection is not kept: the next task asks again.
    opening.catch(() => {
      if (this.leaseClient === opening) this.leaseClient = undefined;
    });
    return opening;
  }

  /**
   * The session holding the locks is gone (closed, failed, or silent past its liveness
   * check): this process steps down at once, every task's next `asLeader` asks for the lock
   * again on a new session, as a process that never held it would, and gets it only if no
   * other process took it meanwhile.
   */
  private dropLeases(opening: Promise<PoolClient>, client: PoolClient, err: Error): void {
    if (this.leaseClient !== opening) return;
    this.leaseClient = undefined;
    this.stopLeaseLivenessCheck?.();
    this.stopLeaseLivenessCheck = undefined;
    if (this.leases.size > 0) {
      this.leaseLosses++;
      this.log.warn({ tasks: [...this.leases.keys()], err: err.message }, 'background-task locks lost with their connection; this process stopped running those tasks and asks for them again');
    }
    this.leases.clear();
    // A silent session has its liveness query still waiting: releasing it destroys the socket
    // instead of waiting for a goodbye that would never come.
    client.release(true);
    // This process's liveness lock went with the session: taken again at once (audit outbox).
    if (this.livenessOwner !== undefined && !this.closed) {
      this.leaseClient = this.openLeaseClient();
      this.leaseClient.catch((err: unknown) => this.log.warn({ err: (err as Error).message }, 'could not take this process\'s liveness lock again; the next background task retries'));
    }
  }
}
