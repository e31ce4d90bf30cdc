import type { PoolClient } from 'pg';
import type { Queryable } from './reads';

/**
 * The transaction's id, if its writes took one (PostgreSQL gives a transaction an id at its
 * first change; one that changed nothing has none, and its outcome changes nothing either).
 * Learnt before COMMIT so that a COMMIT whose answer is lost can be asked about afterwards.
 * With change names to announce, it rides on the NOTIFY's round trip; otherwise (intents and
 * audit outbox entries only) it costs one, and a transaction that buffered no write asks
 * nothing.
 */
export async function announceWrites(client: PoolClient, notify: { channel: string; payload: string } | undefined, buffered: boolean): Promise<string | null> {
  if (notify !== undefined) {
    const { rows } = await client.query<{ xid: string | null }>('SELECT pg_notify($1, $2), pg_current_xact_id_if_assigned()::text AS xid', [notify.channel, notify.payload]);
    return rows[0].xid;
  }
  if (!buffered) return null;
  const { rows } = await client.query<{ xid: string | null }>('SELECT pg_current_xact_id_if_assigned()::text AS xid');
  return rows[0].xid;
}

/** What PostgreSQL says of a transaction whose COMMIT was sent and whose answer was lost. */
export type CommitOutcome = 'committed' | 'aborted' | { unknown: string };

const FIRST_WAIT_MS = 10;
const LONGEST_WAIT_MS = 500;

/**
 * Asks, on another connection, whether transaction `xid` committed: pg_xact_status
 * (PostgreSQL 13 and later; txid_status before) answers 'committed', 'aborted' (a session
 * that ended before its COMMIT arrived aborts), 'in progress', or NULL once the transaction
 * is too old for the server to remember. PostgreSQL documents it for exactly this: "to
 * determine whether a transaction committed or aborted when the application and database
 * server become disconnected while a COMMIT is in progress". While the transaction is in
 * progress (the server still committing, or not yet aware that its client is gone) it asks
 * again, until `deadlineMs` (the store's call deadline) has passed.
 */
export async function commitOutcome(reader: Queryable, xid: string, deadlineMs: number): Promise<CommitOutcome> {
  const giveUpAt = Date.now() + deadlineMs;
  for (let wait = FIRST_WAIT_MS; ; wait = Math.min(wait * 2, LONGEST_WAIT_MS)) {
    let status: string | null;
    try {
      status = (await reader.query<{ status: string | null }>('SELECT pg_xact_status($1::xid8) AS status', [xid])).rows[0].status;
    } catch (err) {
      return { unknown: `asking PostgreSQL for its status failed: ${(err as Error).message}` };
    }
    if (status === 'committed' || status === 'aborted') return status;
    if (status === null) return { unknown: 'PostgreSQL no longer remembers its status' };
    if (Date.now() + wait >= giveUpAt) return { unknown: `still in progress ${deadlineMs} ms after its COMMIT's answer was lost` };
    await new Promise((resolve) => setTimeout(resolve, wait));
  }
}
