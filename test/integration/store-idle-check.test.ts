import { CreateAliasCommand, CreateKeyCommand, ListAliasesCommand, ListKeysCommand, ListResourceTagsCommand, TagResourceCommand } from '@aws-sdk/client-kms';
import { expect } from 'chai';
import pino from 'pino';
import { Client } from 'pg';
import { IDLE_CHECK_STATEMENT } from '../../src/store/postgres/checked-pool';
import { PostgresStore } from '../../src/store/postgres/postgres-store';
import { freshDatabaseUrl } from '../support/postgres';
import { postgresRelay, type PostgresRelay } from '../support/postgres-relay';
import { serverOnFreshDatabase } from '../support/postgres-suite';
import { metricSample, type TestServer } from '../support/server';

/** The change feed's connection: it has a liveness check of its own (store-change-feed-liveness.test.ts). */
const LISTEN = 'LISTEN p11kms_changes';

/**
 * Pooled PostgreSQL connections whose server side went away while they sat idle, without the
 * node hearing so (a firewall's idle timeout, a failover behind a silent network: the relay
 * blackholes them, nothing passes and nothing closes). Unlike a reset connection
 * (store-lost-connections.test.ts), a statement sent on one waits the whole store deadline.
 * A connection idle past storeIdleCheckAfterMs is checked before use, so no request is given
 * one. The deadline here is an hour: a request that waited it would time the test out.
 */
describe('PostgreSQL store: pooled connections that went silent while idle', function () {
  this.timeout(60_000);
  let relay: PostgresRelay;
  let server: TestServer;
  let db: Client;

  // Every reused connection is checked (a window of 0): the test needs no wait for connections
  // to age. Each silent one costs its check's deadline: a short one keeps the test short (a
  // false alarm on a busy host would only cost a new connection).
  serverOnFreshDatabase(
    {
      relayed: true,
      server: { env: { P11KMS_STORE_CALL_TIMEOUT_SECONDS: '3600', P11KMS_STORE_IDLE_CHECK_AFTER_MS: '0', P11KMS_STORE_IDLE_CHECK_TIMEOUT_MS: '200' } },
    },
    (suite) => ({ server, relay, db } = suite),
  );

  it('requests that read and write the store succeed on other connections, each change made once', async () => {
    const kms = server.client();
    const keyId = (await kms.send(new CreateKeyCommand({}))).KeyMetadata!.KeyId!;
    // Several connections idle in both pools (transactions, reads, key mutation locks).
    await Promise.all([
      ...Array.from({ length: 2 }, (_, i) => kms.send(new CreateAliasCommand({ AliasName: `alias/warm-${i}`, TargetKeyId: keyId }))),
      ...Array.from({ length: 2 }, () => kms.send(new ListKeysCommand({}))),
      kms.send(new TagResourceCommand({ KeyId: keyId, Tags: [{ TagKey: 'warm', TagValue: 'yes' }] })),
    ]);
    const logFrom = server.stderr().length;
    const silenced = relay.blackhole((statements) => !statements.has(LISTEN));
    expect(silenced, 'connections blackholed').to.be.greaterThan(2);

    await kms.send(new CreateAliasCommand({ AliasName: 'alias/after-silence', TargetKeyId: keyId }));
    expect(((await kms.send(new ListKeysCommand({}))).Keys ?? []).map((k) => k.KeyId)).to.include(keyId);
    await kms.send(new TagResourceCommand({ KeyId: keyId, Tags: [{ TagKey: 'after', TagValue: 'silence' }] }));
    const newKeyId = (await kms.send(new CreateKeyCommand({}))).KeyMetadata!.KeyId!;

    const log = server.stderr().slice(logFrom).split('\n');
    const found = log.filter((l) => l.includes('failed its check before use')).map((l) => JSON.parse(l) as { failedChecks: number });
    expect(found.length, 'silent connections found by their check').to.be.greaterThan(0);
    // The first a request found has every other idle one checked at once: none meets a second.
    expect(found.map((f) => f.failedChecks)).to.deep.equal(found.map(() => 1));
    const discarded = metricSample(await (await fetch(`${server.endpoint}/metrics`)).text(), 'p11kms_store_connections_discarded_total ');
    expect(discarded, 'p11kms_store_connections_discarded_total').to.be.at.least(found.length);
    expect(log.filter((l) => /request failed|unexpected failure/.test(l))).to.deep.equal([]);
    // Each change once: the check comes before any statement of the request.
    const aliases = await db.query<{ n: string }>("SELECT count(*) AS n FROM p11kms_aliases WHERE alias_name = 'alias/after-silence'");
    expect(aliases.rows[0].n).to.equal('1');
    const keys = await db.query<{ key_id: string }>('SELECT key_id FROM p11kms_keys ORDER BY key_id');
    expect(keys.rows.map((r) => r.key_id)).to.deep.equal([keyId, newKeyId].sort());
    expect((await kms.send(new ListAliasesCommand({ KeyId: keyId }))).Aliases!.map((a) => a.AliasName)).to.include('alias/after-silence');
    const tags = (await kms.send(new ListResourceTagsCommand({ KeyId: keyId }))).Tags ?? [];
    expect(tags).to.deep.include.members([{ TagKey: 'warm', TagValue: 'yes' }, { TagKey: 'after', TagValue: 'silence' }]);
    const health = (await (await fetch(`${server.endpoint}/health`)).json()) as { missingMaterial: number; unknownTokenObjects: number };
    expect([health.missingMaterial, health.unknownTokenObjects]).to.deep.equal([0, 0]);
  });

  it('one silent connection found has every idle one checked at once: the request meets one, not each in turn', async () => {
    const own = await postgresRelay(await freshDatabaseUrl());
    const lines: Array<{ msg: string; failedChecks?: number; checked?: number; dead?: number }> = [];
    const log = pino({ level: 'info' }, { write: (line: string) => lines.push(JSON.parse(line)) });
    const store = await PostgresStore.open(own.url, log, { poolSize: 10, idleCheck: { afterIdleMs: 0, timeoutMs: 200 } });
    try {
      // Ten transactions at once, each holding its connection until all ten do: the pool's ten connections, then idle.
      let inside = 0;
      let allInside!: () => void;
      const barrier = new Promise<void>((resolve) => (allInside = resolve));
      await Promise.all(
        Array.from({ length: 10 }, () =>
          store.transact(async (tx) => {
            await tx.getCustomKeyStore('cks-00000000000000000');
            if (++inside === 10) allInside();
            await barrier;
          }),
        ),
      );
      expect(own.blackhole((statements) => !statements.has(LISTEN)), 'pooled connections blackholed').to.equal(10);

      expect(await store.listKeys()).to.deep.equal([]);
      // Pre: the read met all ten one after another (failedChecks 1 to 10).
      const found = lines.filter((l) => l.msg.includes('failed its check before use'));
      expect(found.map((l) => l.failedChecks), 'dead connections the read met itself').to.deep.equal([1]);
      // The other nine were taken from the pool before the read asked it again; their round of checks ends after it.
      const swept = () => lines.filter((l) => l.msg.includes('the idle ones were checked at once'));
      for (let polls = 0; swept().length === 0; polls++) {
        if (polls > 1000) throw new Error('the idle connections were never checked');
        await new Promise((r) => setTimeout(r, 20));
      }
      expect(swept().map((l) => [l.checked, l.dead]), 'checked together after it').to.deep.equal([[9, 9]]);
      expect(store.discardedConnections()).to.equal(10);
    } finally {
      await store.close();
      await own.close();
    }
  });

  it('a connection used within the window is handed out with no check: a busy pool pays no round trip', async () => {
    // A relay of its own: the server above may use its pools meanwhile (background work).
    const own = await postgresRelay(await freshDatabaseUrl());
    try {
      for (const [afterIdleMs, checks] of [
        [60_000, 0],
        [0, 20],
      ]) {
        const store = await PostgresStore.open(own.url, pino({ level: 'silent' }), { idleCheck: { afterIdleMs, timeoutMs: 1_000 } });
        try {
          const before = own.sent(IDLE_CHECK_STATEMENT);
          // One after the other: each reuses the connection the one before released (the schema migration's, first).
          for (let i = 0; i < 10; i++) {
            await store.listKeys();
            await store.transact((tx) => tx.getCustomKeyStore('cks-00000000000000000'));
          }
          expect(own.sent(IDLE_CHECK_STATEMENT) - before, `checks with a window of ${afterIdleMs} ms`).to.equal(checks);
        } finally {
          await store.close();
        }
      }
    } finally {
      await own.close();
    }
  });
});
