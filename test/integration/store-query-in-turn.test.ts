import { expect } from 'chai';
import { Client, type QueryConfig } from 'pg';
import { queryInTurn } from '../../src/store/postgres/query-in-turn';
import { freshDatabaseUrl } from '../support/postgres';

/**
 * The queries of a connection several callers share (the background-task lock session, the
 * change feed's LISTEN connection) go one at a time through queryInTurn, as node-postgres 8's
 * own queue ran them (9.0 drops it). What that queue also did is kept: a query's deadline
 * counts its wait for its turn, so a liveness check asked behind a statement that never ends
 * still fails in time.
 */
describe('PostgreSQL store: queries in turn on a shared connection', function () {
  this.timeout(60_000);
  let url: string;
  let shared: Client;
  let other: Client;

  before(async () => {
    url = await freshDatabaseUrl();
  });

  beforeEach(async () => {
    shared = new Client({ connectionString: url });
    other = new Client({ connectionString: url });
    await shared.connect();
    await other.connect();
  });

  afterEach(async () => {
    await shared.end().catch(() => undefined);
    await other.end().catch(() => undefined);
  });

  it('answers queries asked at once in the order they were asked', async () => {
    const answers = await Promise.all([1, 2, 3, 4, 5].map((n) => queryInTurn<{ n: number }>(shared, 'SELECT $1::int AS n, pg_sleep(0.01)', [n])));
    expect(answers.map((a) => a.rows[0].n)).to.deep.equal([1, 2, 3, 4, 5]);
  });

  it('fails a query whose deadline passes while it waits for its turn, and never sends it; the ones before and after it run', async () => {
    await other.query('SELECT pg_advisory_lock(42)');
    // Waits on the server until `other` lets the lock go (no deadline of its own).
    const waiting = queryInTurn(shared, 'SELECT pg_advisory_lock(42)');
    const behind = queryInTurn(shared, { text: "SELECT set_config('application_name', 'sent', false)", query_timeout: 200 } as QueryConfig).then(
      () => 'answered',
      (err: Error) => err.message,
    );
    expect(await behind).to.equal('Query read timeout');
    // Its deadline passed while the statement ahead still waited: let that one end now.
    const { rows } = await other.query<{ waiting: string }>("SELECT count(*)::text AS waiting FROM pg_locks WHERE locktype = 'advisory' AND NOT granted");
    expect(rows[0].waiting, 'the statement ahead still waits for the lock').to.equal('1');
    await other.query('SELECT pg_advisory_unlock(42)');
    await waiting;
    const name = await queryInTurn<{ application_name: string }>(shared, 'SHOW application_name');
    expect(name.rows[0].application_name, 'the query that gave up was never sent').to.not.equal('sent');
  });
});
