import type { Client, PoolClient, QueryConfig } from 'pg';
import { queryInTurn } from './query-in-turn';

/**
 * A connection held open for what it carries by being open (the change feed's LISTEN, the
 * background-task advisory locks) that dies without a FIN or reset reaching this process (a
 * NAT or firewall forgetting it, a database host lost, a failover) looks idle for ever: TCP
 * keepalive notices only after hours. So it is asked a trivial query this often, and given
 * this long to answer before it is taken for dead: a dead one is found within about 10 s. A
 * false alarm (a database too busy to answer in 5 s) costs one reconnection.
 */
export const LIVENESS_CHECK_EVERY_MS = 5_000;
export const LIVENESS_DEADLINE_MS = 5_000;

/**
 * Asks `client` `SELECT 1` every LIVENESS_CHECK_EVERY_MS; an answer within
 * LIVENESS_DEADLINE_MS proves the connection (and whatever it carries) still flows. The
 * first check that fails (no answer in time, or an error) calls `dead` once, and checking
 * stops; so does the returned function. An answer on the same socket is the proof wanted:
 * a new connection succeeding would say nothing about this one.
 */
export function checkLiveness(client: Client | PoolClient, connection: string, dead: (err: Error) => void): () => void {
  let timer: NodeJS.Timeout | undefined;
  let stopped = false;
  const schedule = () => {
    timer = setTimeout(() => {
      // In turn with the connection's other queries (the lock session's are asked at any
      // time); the deadline counts the wait for its turn too. node-postgres honours a
      // per-query query_timeout its types do not declare.
      queryInTurn(client, { text: 'SELECT 1', query_timeout: LIVENESS_DEADLINE_MS } as QueryConfig).then(
        () => {
          if (!stopped) schedule();
        },
        (err: Error) => {
          if (stopped) return;
          stopped = true;
          const silent = err.message === 'Query read timeout';
          dead(silent ? new Error(`the ${connection} connection did not answer a liveness check within ${LIVENESS_DEADLINE_MS} ms`) : err);
        },
      );
    }, LIVENESS_CHECK_EVERY_MS);
    timer.unref();
  };
  schedule();
  return () => {
    stopped = true;
    clearTimeout(timer);
  };
}
