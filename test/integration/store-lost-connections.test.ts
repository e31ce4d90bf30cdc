import { CreateKeyCommand, ListKeysCommand, ListResourceTagsCommand, TagResourceCommand } from '@aws-sdk/client-kms';
import { expect } from 'chai';
import type { PostgresRelay } from '../support/postgres-relay';
import { serverOnFreshDatabase } from '../support/postgres-suite';
import type { TestServer } from '../support/server';

/**
 * Pooled PostgreSQL connections that died while idle (a failover behind one address, a
 * firewall forgetting idle connections): the database itself is up. A read, or a transaction
 * whose connection is found lost before its COMMIT was sent (so it cannot have committed), is
 * run again on another connection: the client sees no failure. The SDK clients here do not
 * retry (maxAttempts 1), so every success is the service's own.
 */
describe('PostgreSQL store: pooled connections that died unnoticed', function () {
  this.timeout(120_000);
  let relay: PostgresRelay;
  let server: TestServer;

  serverOnFreshDatabase({ relayed: true }, (suite) => ({ server, relay } = suite));

  it('reads, key mutations and creations succeed on the first try after every connection was cut, and nothing is lost', async () => {
    const kms = server.client();
    const keyIds = [(await kms.send(new CreateKeyCommand({}))).KeyMetadata!.KeyId!];
    const logBefore = server.stderr().length;
    for (let round = 1; round <= 3; round++) {
      // Several connections idle in the pools: concurrent reads and key mutations.
      await Promise.all([
        ...Array.from({ length: 8 }, () => kms.send(new ListKeysCommand({}))),
        ...keyIds.map((KeyId) => kms.send(new TagResourceCommand({ KeyId, Tags: [{ TagKey: 'warm', TagValue: String(round) }] }))),
      ]);
      expect(relay.cut(), 'connections cut').to.be.greaterThan(1);

      const listed = ((await kms.send(new ListKeysCommand({}))).Keys ?? []).map((k) => k.KeyId);
      expect(listed).to.include.members(keyIds);
      await kms.send(new TagResourceCommand({ KeyId: keyIds[0], Tags: [{ TagKey: 'round', TagValue: String(round) }] }));
      keyIds.push((await kms.send(new CreateKeyCommand({}))).KeyMetadata!.KeyId!);
    }
    const tags = (await kms.send(new ListResourceTagsCommand({ KeyId: keyIds[0] }))).Tags ?? [];
    expect(tags.find((t) => t.TagKey === 'round')?.TagValue).to.equal('3');
    expect(((await kms.send(new ListKeysCommand({}))).Keys ?? []).map((k) => k.KeyId)).to.include.members(keyIds);
    expect(server.stderr().slice(logBefore).split('\n').filter((l) => /request failed|unexpected failure/.test(l))).to.deep.equal([]);
    const health = (await (await fetch(`${server.endpoint}/health`)).json()) as { missingMaterial: number; unknownTokenObjects: number };
    expect([health.missingMaterial, health.unknownTokenObjects]).to.deep.equal([0, 0]);
  });
});
