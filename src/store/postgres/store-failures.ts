import type { PoolConfig } from 'pg';
import { StoreTimeoutError, StoreUnavailableError } from '../../errors';

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

/** SQL states of timeouts a database administrator may set: statement_timeout (or a cancel), lock_timeout. */
const SERVER_TIMEOUTS = new Set(['57014', '55P03']);
/**
 * SQL states of a database that is going away or takes no session: connection exceptions
 * (class 08), admin/crash shutdown and "cannot connect now" (57P01–57P03), too many connections.
 */
const UNAVAILABLE = /^(08...|57P0[1-3]|53300)$/;
/** Socket errors on the way to the database. */
const UNREACHABLE = new Set(['ECONNREFUSED', 'ECONNRESET', 'EPIPE', 'ETIMEDOUT', 'EHOSTUNREACH', 'ENETUNREACH', 'ENOTFOUND', 'EAI_AGAIN']);
/** node-postgres's own texts for a connection that broke (it gives them no code). */
const BROKEN_CONNECTION = new Set(['Connection terminated unexpectedly', 'Connection terminated', 'Client has encountered a connection error and is not queryable']);

/**
 * The failure as the store reports it: a passed deadline becomes a StoreTimeoutError, a
 * database out of reach a StoreUnavailableError; anything else (a constraint, a
 * serialisation conflict, a defect) stays as it is.
 */
export function asStoreFailure(err: unknown): unknown {
  if (!(err instanceof Error) || err instanceof StoreUnavailableError) return err;
  const raw = (err as { code?: unknown }).code;
  const code = typeof raw === 'string' ? raw : undefined;
  if (PASSED_DEADLINES.has(err.message) || (code && SERVER_TIMEOUTS.has(code))) {
    return new StoreTimeoutError(`the PostgreSQL store did not answer in time (${code ?? err.message})`, { cause: err });
  }
  if ((code && (UNAVAILABLE.test(code) || UNREACHABLE.has(code))) || BROKEN_CONNECTION.has(err.message)) {
    const why = code && !err.message.includes(code) ? `${code}: ${err.message}` : err.message;
    return new StoreUnavailableError(`the PostgreSQL store is out of reach (${why})`, { cause: err });
  }
  return err;
}

/** `pending`, its failure reported as asStoreFailure says. */
export function deadlined<T>(pending: Promise<T>): Promise<T> {
  return pending.catch((err: unknown) => {
    throw asStoreFailure(err);
  });
}

/**
 * A statement failed because its connection, already established, was lost (not a passed
 * deadline: the statement may still be running). Nothing of it can commit any more: a
 * transaction commits only on a COMMIT the server received.
 */
export function isLostConnection(failure: unknown): boolean {
  return failure instanceof StoreUnavailableError && !(failure instanceof StoreTimeoutError);
}
