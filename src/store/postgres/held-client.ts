import type { PoolClient } from 'pg';
import type { Logger } from 'pino';
import { deadlined } from './store-failures';

/**
 * A pool client held across several statements (a transaction, the schema migration).
 * Between two statements nothing is waiting on the connection, so its loss (the server
 * stopping, `pg_terminate_backend`, a network cut) arrives as an 'error' event on the
 * client, and an 'error' event nobody listens to ends the process. The loss is noted
 * instead: the next statement fails (the caller's error path), and the client is destroyed
 * rather than handed back to the pool.
 */
export async function holdClient(pool: { connect(): Promise<PoolClient> }, log: Logger, purpose: string): Promise<{ client: PoolClient; release(destroy?: boolean): void }> {
  const client = await deadlined(pool.connect());
  let lost = false;
  const noteLoss = (err: Error) => {
    lost = true;
    log.warn({ err: err.message, purpose }, 'PostgreSQL connection lost while held; its statements fail');
  };
  client.on('error', noteLoss);
  return {
    client,
    release(destroy = false) {
      client.off('error', noteLoss);
      client.release(lost || destroy);
    },
  };
}
