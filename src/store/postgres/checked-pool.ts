import { performance } from 'node:perf_hooks';
import type { Pool, PoolClient, QueryConfig } from 'pg';
import type { Logger } from 'pino';
import { asStoreFailure } from './store-failures';

/**
 * storeIdleCheckAfterMs' and storeIdleCheckTimeoutMs' defaults, for stores opened outside the
 * service (store migrate, tests). Measured on this project's store (Poisson load of reads and
 * one-record transactions straight to PostgreSQL, LIFO pool): with a 250 ms window, 0.5 % of
 * checkouts at 200 store calls/s and 2.9 % at 50/s are checked (7.4 % at 10/s; at 2/s half
 * are, when a round trip costs nothing that matters); with 1 s, 0.2 % and 0.1 %. The shorter
 * one because a connection used within the window is handed out unasked: the service's own
 * background work (a sweep's few reads) leaves one used a few hundred ms before a request,
 * and with a 1 s window four of five requests right after every connection went silent got
 * that one and failed after the store deadline; with 250 ms none of five did. `SELECT 1` took
 * 0.09 ms at the median and 21 ms at worst of 2,000 on a shared two-core host: 500 ms is far
 * from a false alarm, and bounds what a silent connection costs the request that finds it
 * (once: the other idle connections are then checked together, see checkIdle).
 */
export const IDLE_CHECK_AFTER_MS = 250;
export const IDLE_CHECK_TIMEOUT_MS = 500;
/** The check's own text, so that it is told apart from every other statement (tests, pg_stat_statements). */
export const IDLE_CHECK_STATEMENT = 'SELECT 1 AS idle_check';

export interface IdleCheck {
  /** A pooled connection idle at least this long is checked before it is handed out. */
  afterIdleMs: number;
  /** How long the check may take before the connection is taken for dead. */
  timeoutMs: number;
}

/**
 * A pool whose connections are checked before use when they sat idle: a connection whose
 * server side went away unheard (a firewall's idle timeout, a failover behind a silent
 * network) would otherwise be handed to a request whose statement then waits the whole
 * store deadline and fails it. One idle at least `afterIdleMs` answers `IDLE_CHECK_STATEMENT`
 * within `timeoutMs` or is destroyed, and the next is taken; one used within the window, or
 * just connected (connecting proved the path), is handed out with no round trip, so a busy
 * pool pays nothing. (pg-pool's own `verify` option runs for new connections only.)
 */
export class CheckedPool {
  /** When each connection was last handed back (monotonic ms); absent: never used. */
  private readonly releasedAt = new WeakMap<PoolClient, number>();
  /** Connections destroyed because they failed their check (p11kms_store_connections_discarded_total). */
  discarded = 0;

  constructor(
    readonly pool: Pool,
    private readonly check: IdleCheck,
    /** Every wait of a store call ends by then: the checks of one checkout together too. */
    private readonly callTimeoutMs: number,
    private readonly log: Logger,
    private readonly name: string,
  ) {
    pool.on('release', (_err: Error | undefined, client: PoolClient) => this.releasedAt.set(client, performance.now()));
  }

  /**
   * A connection that answered its check or needed none. Each failed check destroys one
   * connection, so after as many as the pool holds the next is a new one; the checks stop
   * earlier once the store call deadline has passed, with the last check's failure (a
   * StoreTimeoutError, as a statement on that connection would have had).
   */
  async connect(): Promise<PoolClient> {
    const started = performance.now();
    for (let failed = 0; ; ) {
      const client = await this.pool.connect();
      const releasedAt = this.releasedAt.get(client);
      if (releasedAt === undefined || performance.now() - releasedAt < this.check.afterIdleMs) return client;
      const remaining = this.callTimeoutMs - (performance.now() - started);
      const timeoutMs = Math.max(1, Math.min(this.check.timeoutMs, remaining));
      const checkStarted = performance.now();
      const failure = await this.answers(client, timeoutMs);
      if (failure === undefined) return client;
      // Never back into the pool: a silent one still has the check waiting on it, and
      // destroying it closes the socket instead of waiting for a goodbye.
      client.release(true);
      this.discarded++;
      failed++;
      this.log.warn(
        { pool: this.name, idleMs: Math.round(performance.now() - releasedAt), err: failure.message, failedChecks: failed },
        'a pooled PostgreSQL connection failed its check before use; destroyed, another is taken',
      );
      // Before this call asks the pool again: it then gets a new connection or one that answered.
      this.checkIdle(checkStarted);
      if (failed > this.pool.options.max || performance.now() - started >= this.callTimeoutMs) throw asStoreFailure(failure);
    }
  }

  /**
   * Connections to one server die together (a failover, a firewall forgetting them all), so
   * once one failed its check every idle one last heard from before that check began is
   * suspect: they are all taken out of the pool now and checked at once, the dead destroyed
   * and the rest handed back. Without this a request met them one after another, each costing
   * it a check's whole deadline (ten silent connections: five seconds); now the request that
   * found the first waits for one round of checks at most, as do requests arriving meanwhile
   * (they wait for a connection that answered or a new one). Taken with `pool.connect()` as
   * many times as the pool has idle connections: pg-pool serves waiters in order, from its
   * idle ones first, and offers no other way to reach an idle connection.
   */
  private checkIdle(suspectSince: number): void {
    const taking = Array.from({ length: this.pool.idleCount }, () => this.pool.connect());
    if (taking.length === 0) return;
    const outcomes = taking.map(async (connecting): Promise<'dead' | 'answered' | 'unchecked'> => {
      const client = await connecting;
      const releasedAt = this.releasedAt.get(client);
      if (releasedAt === undefined || releasedAt >= suspectSince) {
        // Heard from since (or just connected): back, as idle as it was.
        client.release();
        if (releasedAt === undefined) this.releasedAt.delete(client);
        else this.releasedAt.set(client, releasedAt);
        return 'unchecked';
      }
      if ((await this.answers(client, this.check.timeoutMs)) === undefined) {
        client.release();
        return 'answered';
      }
      client.release(true);
      this.discarded++;
      return 'dead';
    });
    void Promise.allSettled(outcomes).then((settled) => {
      const count = (outcome: string) => settled.filter((s) => s.status === 'fulfilled' && s.value === outcome).length;
      const dead = count('dead');
      this.log[dead > 0 ? 'warn' : 'info'](
        { pool: this.name, checked: dead + count('answered'), dead },
        'after a pooled PostgreSQL connection failed its check, the idle ones were checked at once; the dead destroyed',
      );
    });
  }

  /** Undefined when `client` answered the check in time, else why not. */
  private async answers(client: PoolClient, timeoutMs: number): Promise<Error | undefined> {
    // A connection breaking now also emits 'error' (which ends the process if nobody listens);
    // the check's own failure says all there is to say.
    const ignore = () => undefined;
    client.on('error', ignore);
    try {
      // node-postgres honours a per-query query_timeout its types do not declare.
      await client.query({ text: IDLE_CHECK_STATEMENT, query_timeout: timeoutMs } as QueryConfig);
      return undefined;
    } catch (err) {
      return err instanceof Error ? err : new Error(String(err));
    } finally {
      client.off('error', ignore);
    }
  }

  end(): Promise<void> {
    return this.pool.end();
  }
}
