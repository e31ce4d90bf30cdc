import { createHash } from 'node:crypto';
import * as os from 'node:os';
import type { PoolClient } from 'pg';

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
  /** A new number each time this process takes the lock: a pass belongs to one holding. */
  term: number;
  session: LockSession;
  /** The lock session's connection (its opening, as the store keeps it). */
  opening: Promise<PoolClient>;
  client: PoolClient;
}

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
  const { rows } = await client.query<{ pid: number; started: string }>(
    `SELECT set_config('application_name', $1, false), pg_backend_pid() AS pid, (SELECT ${STARTED_MICROS} FROM pg_stat_activity WHERE pid = pg_backend_pid()) AS started`,
    [lockSessionName()],
  );
  return { pid: rows[0].pid, started: rows[0].started };
}

/**
 * Run inside a duty's transaction, just before its COMMIT: whether the session of `term`
 * holds its lock at this moment. PostgreSQL frees a session's advisory locks when the
 * session ends, whether or not its client heard so; a lock held by a backend of the same pid
 * that started at another time is another session's.
 */
export async function lockStillHeld(client: PoolClient, term: LockTerm): Promise<boolean> {
  const { rows } = await client.query(
    `SELECT 1 FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid
      WHERE l.locktype = 'advisory' AND l.granted AND l.pid = $1 AND l.objsubid = 1
        AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())
        AND ((l.classid::bigint << 32) | l.objid::bigint) = $2::bigint
        AND (extract(epoch FROM a.backend_start) * 1000000)::bigint = $3::bigint`,
    [term.session.pid, term.lock, term.session.started],
  );
  return rows.length === 1;
}

export function lockId(name: string): string {
  // A stable signed 64-bit number per name, as pg_advisory_lock(bigint) takes (tests find a
  // lock's holder in pg_locks by it).
  return createHash('sha256').update(`p11kms:${name}`).digest().readBigInt64BE(0).toString();
}
