import { CreateKeyCommand, TagResourceCommand } from '@aws-sdk/client-kms';
import { expect } from 'chai';
import { until } from '../support/in-process';
import { freshDatabaseUrl } from '../support/postgres';
import { postgresRelay, type PostgresRelay } from '../support/postgres-relay';
import { metricSample, TestServer } from '../support/server';

/**
 * A node's LISTEN connection (the change feed: other nodes' commits drop its cached records)
 * that dies without a FIN or reset reaching the node (a NAT or firewall forgetting it, a
 * database host lost) looks idle for ever, and TCP keepalive notices only after hours. The
 * node must find it dead by itself, listen again on a new connection, and hear the other
 * nodes' changes again. Node `watched` reaches PostgreSQL through a relay that blackholes
 * its LISTEN connection; node `other` writes directly.
 */
describe('PostgreSQL store: a change feed connection that went silent', function () {
  this.timeout(120_000);
  let relay: PostgresRelay;
  let watched: TestServer;
  let other: TestServer;

  before(async () => {
    const databaseUrl = await freshDatabaseUrl();
    relay = await postgresRelay(databaseUrl);
    watched = await TestServer.start({ env: { P11KMS_STORE_URL: relay.url } });
    other = await TestServer.start({ env: { P11KMS_STORE_URL: databaseUrl } });
  });

  after(async () => {
    await watched?.stop();
    await other?.stop();
    await relay?.close();
  });

  const metric = async (name: string) => metricSample(await (await fetch(`${watched.endpoint}/metrics`)).text(), `${name} `);
  const notificationsHeard = async () => (await metric('p11kms_store_change_notifications_total')) ?? 0;
  /** Waits until `watched` heard a notification of a change `other` makes. */
  const hearsOtherNodesChange = async (keyId: string, round: string) => {
    const before = await notificationsHeard();
    await other.client().send(new TagResourceCommand({ KeyId: keyId, Tags: [{ TagKey: 'round', TagValue: round }] }));
    return until(async () => (await notificationsHeard()) > before, 60_000);
  };

  it('is found dead by its liveness check, listened on again, and hears the other node\'s changes again', async () => {
    const keyId = (await other.client().send(new CreateKeyCommand({}))).KeyMetadata!.KeyId!;
    expect(await hearsOtherNodesChange(keyId, 'before'), 'notifications heard before the blackhole').to.equal(true);
    expect(await metric('p11kms_store_change_feed_listening')).to.equal(1);
    expect(await metric('p11kms_store_change_feed_losses_total')).to.equal(0);

    const logFrom = watched.stderr().length;
    expect(relay.blackhole('LISTEN p11kms_changes'), 'LISTEN connections blackholed').to.equal(1);
    const linesSince = () => watched.stderr().slice(logFrom).split('\n');
    // The limit only bounds the failure: before the liveness check, nothing ever noticed.
    const noticed = await until(async () => linesSince().some((l) => l.includes('store change notifications lost') && l.includes('did not answer a liveness check')), 60_000);
    expect(noticed, 'the node noticed that its LISTEN connection went silent').to.equal(true);
    expect(await until(async () => linesSince().some((l) => l.includes('store change notifications back')), 60_000), 'listening again').to.equal(true);
    expect(await metric('p11kms_store_change_feed_losses_total')).to.equal(1);
    expect(await metric('p11kms_store_change_feed_listening')).to.equal(1);

    expect(await hearsOtherNodesChange(keyId, 'after'), 'notifications heard after the new LISTEN').to.equal(true);
    expect(linesSince().filter((l) => /request failed|unexpected failure/.test(l))).to.deep.equal([]);
  });
});
