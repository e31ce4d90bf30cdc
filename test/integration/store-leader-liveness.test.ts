import { expect } from 'chai';
import { Client } from 'pg';
import { BACKGROUND_TASK } from '../../src/lifecycle/leadership';
import { lockId } from '../../src/store/postgres/postgres-store';
import { until } from '../support/in-process';
import { freshDatabaseUrl } from '../support/postgres';
import { postgresRelay, type PostgresRelay } from '../support/postgres-relay';
import { metricSample, TestServer } from '../support/server';

/**
 * The cluster's background work (sweeps, rotations, audit outbox delivery) runs on the node
 * holding a PostgreSQL advisory lock on a session of its own. When that session ends on the
 * server side without the node hearing so (a failover, a silent network: here the relay
 * blackholes it and the test terminates its backend), PostgreSQL frees the lock and another
 * node takes it over. The first node must notice by itself and step down, or two nodes run
 * the background work at once. Node `first` reaches PostgreSQL through the relay and leads;
 * node `second` connects directly and follows.
 */
describe('PostgreSQL store: a background-work lock session that went silent', function () {
  this.timeout(120_000);
  let databaseUrl: string;
  let relay: PostgresRelay;
  let first: TestServer;
  let second: TestServer | undefined;

  const metric = async (server: TestServer, name: string) => metricSample(await (await fetch(`${server.endpoint}/metrics`)).text(), `${name} `);
  const leads = async (server: TestServer) => (await metric(server, 'p11kms_background_leader')) === 1;
  const health = async (server: TestServer) => (await (await fetch(`${server.endpoint}/health`)).json()) as { backgroundLeader?: boolean };

  before(async () => {
    databaseUrl = await freshDatabaseUrl();
    relay = await postgresRelay(databaseUrl);
    first = await TestServer.start({ env: { P11KMS_STORE_URL: relay.url } });
    expect(await until(() => leads(first), 60_000), 'the first node leads').to.equal(true);
    second = await TestServer.start({ env: { P11KMS_STORE_URL: databaseUrl } });
  });

  after(async () => {
    await first?.stop();
    await second?.stop();
    await relay?.close();
  });

  it('is found dead by its liveness check: the node steps down while the other leads, and leads again on a new session once the other is gone', async () => {
    expect(await metric(second!, 'p11kms_background_leader'), 'the second node follows').to.equal(0);
    expect(await health(first)).to.include({ backgroundLeader: true });
    expect(await health(second!)).to.include({ backgroundLeader: false });
    expect(await metric(first, 'p11kms_background_leadership_losses_total')).to.equal(0);

    const firstLogFrom = first.stderr().length;
    const secondLogFrom = second!.stderr().length;
    expect(relay.blackhole('SELECT pg_try_advisory_lock($1) AS ok'), 'lock sessions blackholed').to.equal(1);
    // The server ends the session (and frees its locks); the blackhole keeps the node from hearing so.
    const admin = new Client({ connectionString: databaseUrl });
    await admin.connect();
    try {
      const { rows } = await admin.query<{ ended: boolean }>(
        "SELECT pg_terminate_backend(pid) AS ended FROM pg_locks WHERE locktype = 'advisory' AND granted AND ((classid::bigint << 32) | objid::bigint) = $1::bigint",
        [lockId(BACKGROUND_TASK)],
      );
      expect(rows, 'the leader\'s lock session terminated').to.deep.equal([{ ended: true }]);
    } finally {
      await admin.end();
    }

    expect(await until(() => leads(second!), 60_000), 'the second node took the background work over').to.equal(true);
    expect(second!.stderr().slice(secondLogFrom)).to.include('this process now runs this background task for the cluster');
    const firstLines = () => first.stderr().slice(firstLogFrom).split('\n');
    // The limit only bounds the failure: before the liveness check, the first node never noticed.
    const steppedDown = await until(async () => firstLines().some((l) => l.includes('background-task locks lost with their connection') && l.includes('did not answer a liveness check')), 60_000);
    expect(steppedDown, 'the first node noticed that its lock session went silent').to.equal(true);
    expect(await leads(first), 'the first node no longer leads').to.equal(false);
    expect(await metric(first, 'p11kms_background_leadership_losses_total')).to.equal(1);
    expect(await health(first)).to.include({ backgroundLeader: false });
    expect(await leads(second!), 'the second node still leads').to.equal(true);

    // The first node asks again like any follower: it leads again once the lock is free.
    await second!.stop();
    second = undefined;
    expect(await until(() => leads(first), 60_000), 'the first node leads again on a new session').to.equal(true);
    expect(firstLines().filter((l) => l.includes('this process now runs this background task for the cluster'))).to.have.length(1);
    expect(firstLines().filter((l) => /request failed|unexpected failure|uncaught/i.test(l))).to.deep.equal([]);
  });
});
