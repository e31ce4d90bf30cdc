import { CreateAliasCommand, CreateKeyCommand, DecryptCommand, DescribeKeyCommand, EncryptCommand, ListResourceTagsCommand, TagResourceCommand } from '@aws-sdk/client-kms';
import { expect } from 'chai';
import { Client } from 'pg';
import { migrations } from '../../src/store/postgres/schema';
import { serverOnFreshDatabase } from '../support/postgres-suite';
import { describeWarning, warningsDuring } from '../support/process-warnings';
import { expectKmsError, type TestServer } from '../support/server';

const KNOWN = migrations().at(-1)!.version;
const NEWER = KNOWN + 1;
const UPGRADE_LINE = /"level":50.*schema is at version \d+, newer than this p11kms knows.*upgrade p11kms on this node and restart it/;

/**
 * A rolling upgrade: a node of the newer release migrates the shared database while a node
 * of this release still runs. This node must not write records in the old shape past the
 * migration: it refuses every write (KMSInternalException, nothing written, nothing left on
 * the token), says once in its log what the operator must do, reports itself not ready, and
 * goes on answering reads.
 */
describe('rolling upgrade: a node running while a newer release migrates the PostgreSQL schema', function () {
  this.timeout(120_000);
  let url: string;
  let server: TestServer;
  let db: Client;

  serverOnFreshDatabase({}, (suite) => ({ server, db, url } = suite));

  const ready = async () => {
    const res = await fetch(`${server.endpoint}/ready`);
    return { status: res.status, body: (await res.json()) as { failing: string[]; checks: Record<string, string> } };
  };
  const keyRows = async () => Number((await db.query<{ n: string }>('SELECT count(*) AS n FROM p11kms_keys')).rows[0].n);

  it('refuses every write once the schema is newer than it knows (reads go on, /ready 503, one log line), and writes again when it is not', async () => {
    const kms = server.client();
    const keyId = (await kms.send(new CreateKeyCommand({}))).KeyMetadata!.KeyId!;
    const blob = (await kms.send(new EncryptCommand({ KeyId: keyId, Plaintext: Buffer.from('kept') }))).CiphertextBlob!;
    const rowsBefore = await keyRows();

    // What a node of the newer release does on starting: migrate, and record the version.
    await db.query('INSERT INTO p11kms_schema (version, name) VALUES ($1, $2)', [NEWER, `${NEWER}-from-a-newer-release.sql`]);
    try {
      // Sent at once, each failure awaited from the start: awaited one after another, a later
      // one refused first was a rejection nobody handled yet (PromiseRejectionHandledWarning).
      const { value: refusals, warnings } = await warningsDuring(() =>
        Promise.all(
          [
            kms.send(new CreateKeyCommand({})),
            kms.send(new TagResourceCommand({ KeyId: keyId, Tags: [{ TagKey: 'k', TagValue: 'v' }] })),
            kms.send(new CreateAliasCommand({ AliasName: 'alias/after-the-upgrade', TargetKeyId: keyId })),
          ].map(expectKmsError),
        ),
      );
      for (const err of refusals) {
        expect([err.name, err.message, err.$metadata?.httpStatusCode]).to.deep.equal(['KMSInternalException', 'An internal error occurred.', 500]);
      }
      expect(warnings.filter((w) => w.name === 'PromiseRejectionHandledWarning').map(describeWarning), 'refusals handled late').to.deep.equal([]);
      expect(await keyRows(), 'key records after the refused CreateKey').to.equal(rowsBefore);
      expect((await kms.send(new ListResourceTagsCommand({ KeyId: keyId }))).Tags).to.deep.equal([]);

      // Reads go on.
      expect(Buffer.from((await kms.send(new DecryptCommand({ CiphertextBlob: blob }))).Plaintext!).toString()).to.equal('kept');
      expect((await kms.send(new DescribeKeyCommand({ KeyId: keyId }))).KeyMetadata!.Enabled).to.equal(true);

      const notReady = await ready();
      expect([notReady.status, notReady.body.failing]).to.deep.equal([503, ['store']]);
      expect(notReady.body.checks.store).to.equal(
        `the PostgreSQL schema is at version ${NEWER}, newer than this p11kms knows (${KNOWN}): a newer p11kms migrated it; writes refused until this node runs it`,
      );
      await server.waitForLog(UPGRADE_LINE);
      expect(server.stderr().split('\n').filter((l) => UPGRADE_LINE.test(l)), 'the operator is told once, not per request').to.have.length(1);

      // The refused CreateKey left nothing on the token.
      const health = (await (await fetch(`${server.endpoint}/health`)).json()) as { missingMaterial: number; unknownTokenObjects: number };
      expect([health.missingMaterial, health.unknownTokenObjects]).to.deep.equal([0, 0]);
    } finally {
      await db.query('DELETE FROM p11kms_schema WHERE version = $1', [NEWER]);
    }
    // Checked in every transaction, not latched: with the newer version gone it writes again.
    await kms.send(new CreateKeyCommand({}));
    expect(await keyRows()).to.equal(rowsBefore + 1);
    expect((await ready()).status).to.equal(200);
  });

  it('a migration committing while this node creates a key: never a record in the old shape under the new version', async () => {
    const kms = server.client();
    await kms.send(new CreateKeyCommand({}));
    // The newer release's step, run as its migrations run (SERIALIZABLE): every key record
    // gains a member the new release relies on. It stays open while this node creates a key.
    const migration = new Client({ connectionString: url });
    await migration.connect();
    const created: Array<Promise<unknown>> = [];
    try {
      for (let attempt = 1; ; attempt++) {
        await migration.query('BEGIN ISOLATION LEVEL SERIALIZABLE');
        await migration.query(`UPDATE p11kms_keys SET doc = (doc::jsonb || '{"newShape": true}')::json`);
        await migration.query('INSERT INTO p11kms_schema (version, name) VALUES ($1, $2)', [NEWER, `${NEWER}-new-shape.sql`]);
        if (attempt === 1) created.push(kms.send(new CreateKeyCommand({})).catch((err: Error) => err));
        await created[0];
        const committed = await migration.query('COMMIT').then(
          () => true,
          (err: { code?: string }) => {
            // Losing the conflict is the migration's to retry, as its runner does.
            if (err.code !== '40001') throw err;
            return false;
          },
        );
        if (committed) break;
        if (attempt >= 5) throw new Error('the migration never committed');
      }
    } finally {
      await migration.query('ROLLBACK').catch(() => undefined);
      await migration.end();
    }
    try {
      const outcome = await created[0];
      const oldShape = await db.query<{ key_id: string }>(`SELECT key_id FROM p11kms_keys WHERE (doc::jsonb ->> 'newShape') IS NULL`);
      expect(oldShape.rows, `key records in the old shape under schema version ${NEWER} (CreateKey: ${outcome instanceof Error ? outcome.name : 'created'})`).to.deep.equal([]);
    } finally {
      await db.query('DELETE FROM p11kms_schema WHERE version = $1', [NEWER]);
    }
  });
});
