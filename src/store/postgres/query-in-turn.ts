import { performance } from 'node:perf_hooks';
import type { Client, PoolClient, QueryConfig, QueryResult, QueryResultRow } from 'pg';

/** The end of the last query asked of each shared connection through queryInTurn: the next one starts after it. */
const lastTurn = new WeakMap<Client | PoolClient, Promise<void>>();

/** What node-postgres says when a statement's query_timeout passes (store-failures knows the text). */
const QUERY_READ_TIMEOUT = 'Query read timeout';

/**
 * A query on a connection several callers use at once (the background-task lock session:
 * tasks asking for their locks together, the liveness check, the audit outbox's liveness
 * asks; the change feed's LISTEN connection and its liveness check), run once every query
 * asked of that connection through here before it has ended. node-postgres 8 queues a query
 * asked while its connection runs another, and warns that 9.0 will not ("Calling
 * client.query() when the client is already executing a query is deprecated"); this is that
 * queue, kept on this side. Every query of such a connection must come through here.
 *
 * The query's deadline (its own query_timeout, else its connection's) counts from when it is
 * asked, its wait for its turn included, as node-postgres's queue counted it: a liveness
 * check asked behind a statement the server never answers still fails in time, with
 * node-postgres's own text for a passed deadline. A query whose deadline passed while it
 * waited is never sent.
 */
export function queryInTurn<R extends QueryResultRow = QueryResultRow>(client: Client | PoolClient, query: string | QueryConfig, values?: unknown[]): Promise<QueryResult<R>> {
  const config = (typeof query === 'string' ? { text: query, values } : query) as QueryConfig & { query_timeout?: number };
  const deadlineMs = config.query_timeout ?? connectionDeadline(client);
  const asked = performance.now();
  const before = lastTurn.get(client) ?? Promise.resolve();
  return new Promise<QueryResult<R>>((resolve, reject) => {
    let gaveUp = false;
    const waiting = deadlineMs === undefined ? undefined : setTimeout(() => {
      gaveUp = true;
      reject(new Error(QUERY_READ_TIMEOUT));
    }, deadlineMs);
    const turn = before.then(() => {
      clearTimeout(waiting);
      if (gaveUp) return;
      // node-postgres honours a per-query query_timeout its types do not declare; it bounds
      // what is left of the deadline once the query is sent.
      const left = deadlineMs === undefined ? undefined : Math.max(1, deadlineMs - (performance.now() - asked));
      return client.query<R>({ ...config, ...(left === undefined ? {} : { query_timeout: left }) } as QueryConfig).then(resolve, reject);
    });
    lastTurn.set(client, turn.catch(reject));
  });
}

/** The query_timeout the connection was opened with (a pool passes its own to each connection). */
function connectionDeadline(client: Client | PoolClient): number | undefined {
  const deadline = (client as unknown as { connectionParameters?: { query_timeout?: unknown } }).connectionParameters?.query_timeout;
  return typeof deadline === 'number' && deadline > 0 ? deadline : undefined;
}
