import type { PoolConfig } from 'pg';
import { StoreTimeoutError } from '../../errors';

/**
 * node-postgres's own errors when one of the deadlines below passes. It gives them no code,
 * only these texts: a wait for a free pool connection, a new connection, a statement.
 */
const PASSED_DEADLINES = new Set(['timeout exceeded when trying to connect', 'Connection terminated due to connection timeout', 'Query read timeout']);

/**
 * Every pool of the store bounds each wait on the database: without these, a database that
 * stops answering (frozen, a network cut without a reset, a lock held by another session, a
 * full pool) leaves requests and /ready waiting for ever.
 */
export function deadlineOptions(timeoutMs: number): Pick<PoolConfig, 'connectionTimeoutMillis' | 'query_timeout' | 'keepAlive'> {
  return { connectionTimeoutMillis: timeoutMs, query_timeout: timeoutMs, keepAlive: true };
}

/** The failure as the store reports it: a passed deadline becomes a StoreTimeoutError. */
export function asStoreTimeout(err: unknown): unknown {
  if (err instanceof Error && PASSED_DEADLINES.has(err.message)) return new StoreTimeoutError(`the PostgreSQL store did not answer in time (${err.message})`, { cause: err });
  return err;
}

/** `pending`, its passed deadline reported as a StoreTimeoutError. */
export function deadlined<T>(pending: Promise<T>): Promise<T> {
  return pending.catch((err: unknown) => {
    throw asStoreTimeout(err);
  });
}
