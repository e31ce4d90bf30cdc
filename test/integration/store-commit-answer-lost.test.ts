import { randomBytes } from 'node:crypto';
import * as path from 'node:path';
import { CreateAliasCommand, CreateKeyCommand, EncryptCommand, ListAliasesCommand, ListGrantsCommand } from '@aws-sdk/client-kms';
import { expect } from 'chai';
import { Client } from 'pg';
import { findChains } from '../../src/audit/chains';
import { readTrail } from '../support/audit-trail';
import { until } from '../support/in-process';
import { freshDatabaseUrl } from '../support/postgres';
import { postgresRelay, type PostgresRelay } from '../support/postgres-relay';
import { expectError, post } from '../support/raw-aws-json';
import { expectKmsError, serverPerSuite, type TestServer } from '../support/server';

/**
 * The connection is cut after PostgreSQL received a transaction's COMMIT and committed it,
 * before its answer reached p11kms: the one case where p11kms cannot know whether its change
 * took effect. Running the transaction again could make it twice, or answer a request that
 * succeeded with a refusal of its own first run (CreateAlias: AlreadyExistsException). So it
 * is not run again: the client gets KMSInternalException (HTTP 500, AWS's answer for an
 * internal failure, no stack), the change is recorded once, and a retry by the client meets
 * the first one.
 */
describe('PostgreSQL store: a COMMIT whose answer was lost', function () {
  this.timeout(120_000);
  let relay: PostgresRelay;
  let server: TestServer;
  let db: Client;

  let databaseUrl: string;

  before(async () => {
    databaseUrl = await freshDatabaseUrl();
    relay = await postgresRelay(databaseUrl);
  });
  // Sweeps every second: the audit outbox's delivery runs with them.
  serverPerSuite(() => ({ sweepIntervalSeconds: 1, env: { P11KMS_STORE_URL: relay.url } }), (started) => (server = started));
  before(async () => {
    db = new Client({ connectionString: databaseUrl });
    await db.connect();
  });
  // Registered after the server's hooks: the relay and the test's own connection close once the server has stopped.
  after(async () => {
    await relay?.close();
    await db?.end();
  });

  /** Sends `target` with `body` while the COMMIT of the transaction mentioning `marker` is cut; the answer, checked as AWS's internal error. */
  async function cutDuringCommit(target: string, body: object, marker: string): Promise<void> {
    let committed: string | undefined;
    void relay.cutAfterCommit(marker).then(({ answer }) => (committed = answer.toString('latin1')));
    const res = await post(server.endpoint, { target: `TrentService.${target}`, body: JSON.stringify(body) });
    // The server's answer the relay swallowed: CommandComplete "COMMIT", so the change took effect.
    expect(committed, 'the COMMIT was cut after the server answered it').to.include('C\0\0\0\x0bCOMMIT\0');
    expect(expectError(res, 'KMSInternalException', 500)).to.equal('An internal error occurred.');
  }

  const count = async (sql: string, value: string) => Number((await db.query<{ n: string }>(sql, [value])).rows[0].n);

  it('CreateAlias: KMSInternalException, the alias recorded once, and the client\'s retry is AlreadyExistsException', async () => {
    const kms = server.client();
    const keyId = (await kms.send(new CreateKeyCommand({}))).KeyMetadata!.KeyId!;
    const aliasName = `alias/commit-cut-${randomBytes(4).toString('hex')}`;
    await cutDuringCommit('CreateAlias', { AliasName: aliasName, TargetKeyId: keyId }, aliasName);

    expect(await count('SELECT count(*) AS n FROM p11kms_aliases WHERE alias_name = $1', aliasName)).to.equal(1);
    const listed = ((await kms.send(new ListAliasesCommand({}))).Aliases ?? []).filter((a) => a.AliasName === aliasName);
    expect(listed.map((a) => a.TargetKeyId)).to.deep.equal([keyId]);
    const retry = await expectKmsError(kms.send(new CreateAliasCommand({ AliasName: aliasName, TargetKeyId: keyId })));
    expect(retry.name).to.equal('AlreadyExistsException');

    // The change's audit outbox entry was committed with it; the request's own record (its
    // answer, the 500) is in the trail, so a delivery only removes the entry: one record each.
    expect(await until(async () => (await db.query('SELECT id FROM p11kms_audit_outbox')).rows.length === 0), 'outbox emptied').to.equal(true);
    const records = findChains([path.join(server.dataDir, 'audit')], { required: false })
      .flatMap((chain) => readTrail(chain))
      .filter((r) => r.eventName === 'CreateAlias' && r.requestParameters?.aliasName === aliasName);
    expect(records.map((r) => r.errorCode ?? 'none')).to.deep.equal(['KMSInternalException', 'AlreadyExistsException']);
  });

  it('CreateGrant: KMSInternalException, and one grant, not two', async () => {
    const kms = server.client();
    const keyId = (await kms.send(new CreateKeyCommand({}))).KeyMetadata!.KeyId!;
    const grantee = `arn:aws:iam::111122223333:role/commit-cut-${randomBytes(4).toString('hex')}`;
    await cutDuringCommit('CreateGrant', { KeyId: keyId, GranteePrincipal: grantee, Operations: ['Encrypt'] }, grantee);

    expect(await count("SELECT count(*) AS n FROM p11kms_grants WHERE doc->>'granteePrincipal' = $1", grantee)).to.equal(1);
    const grants = ((await kms.send(new ListGrantsCommand({ KeyId: keyId }))).Grants ?? []).filter((g) => g.GranteePrincipal === grantee);
    expect(grants).to.have.length(1);
  });

  it('CreateKey: KMSInternalException, one key recorded with its material, no intent left', async () => {
    const kms = server.client();
    const description = `commit-cut-${randomBytes(4).toString('hex')}`;
    // The creation's last transaction writes the key record (its first only the intent).
    await cutDuringCommit('CreateKey', { Description: description }, 'INSERT INTO p11kms_keys');

    const { rows } = await db.query<{ key_id: string }>("SELECT key_id FROM p11kms_keys WHERE doc->>'description' = $1", [description]);
    expect(rows).to.have.length(1);
    // The intent went in the same commit as the record.
    expect((await db.query('SELECT creation_id FROM p11kms_intents')).rows).to.deep.equal([]);
    // Its token object was kept (the creation's outcome was unknown): the key works.
    await kms.send(new EncryptCommand({ KeyId: rows[0].key_id, Plaintext: Buffer.from('still here') }));
    const health = (await (await fetch(`${server.endpoint}/health`)).json()) as { missingMaterial: number };
    expect(health.missingMaterial).to.equal(0);
  });
});
