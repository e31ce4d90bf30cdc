import { CreateKeyCommand, DecryptCommand, DescribeKeyCommand, EncryptCommand, ListKeysCommand, TagResourceCommand } from '@aws-sdk/client-kms';
import { expect } from 'chai';
import { Client } from 'pg';
import { huaweiClient } from '../support/huawei-client';
import { ownPostgres, type OwnPostgres } from '../support/postgres';
import { expectKmsError, serverPerSuite, type TestServer } from '../support/server';

/** Polls `attempt` until it settles the way `wanted` says (the event), counting tries rather than time. */
async function until<T>(what: string, attempt: () => Promise<T>, wanted: (outcome: { value?: T; error?: Error }) => boolean, tries = 200): Promise<{ value?: T; error?: Error }> {
  for (let i = 0; i < tries; i++) {
    const outcome = await attempt().then(
      (value) => ({ value }),
      (error: Error) => ({ error }),
    );
    if (wanted(outcome)) return outcome;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`${what} never happened`);
}

const TIMED_OUT = 'The system timed out while trying to fulfill the request. You can retry the request.';

/**
 * A PostgreSQL store that stops answering (a frozen database host, a lock another session
 * holds): every wait on it is bounded by storeCallTimeoutSeconds, so requests get AWS's
 * answer instead of waiting for ever, /ready says which part fails, and the service comes
 * back by itself when the database does, having lost nothing it acknowledged.
 */
describe('PostgreSQL store outages: bounded waits, AWS errors, recovery', function () {
  this.timeout(120_000);
  let pg: OwnPostgres;
  let url: string;
  let server: TestServer;

  before(async () => {
    pg = await ownPostgres();
    url = await pg.databaseUrl();
  });
  // Registered before the server's hooks, so that a database left frozen is thawed before the server stops.
  after(() => pg?.thaw());
  serverPerSuite(() => ({ env: { P11KMS_STORE_URL: url, P11KMS_STORE_CALL_TIMEOUT_SECONDS: '2' } }), (started) => (server = started));

  const ready = async () => {
    const res = await fetch(`${server.endpoint}/ready`);
    return { status: res.status, body: (await res.json()) as { failing: string[]; checks: Record<string, string> } };
  };

  it('a frozen database: DependencyTimeoutException (KMSInternalException where the model lists no timeout), /ready 503, then recovery with nothing lost', async () => {
    const kms = server.client();
    const keyId = (await kms.send(new CreateKeyCommand({}))).KeyMetadata!.KeyId!;
    const blob = (await kms.send(new EncryptCommand({ KeyId: keyId, Plaintext: Buffer.from('kept') }))).CiphertextBlob!;

    pg.freeze();
    try {
      // The node's read cache may answer from memory for a moment: the event is the first refusal.
      const { error } = await until('Encrypt failing on a frozen store', () => kms.send(new EncryptCommand({ KeyId: keyId, Plaintext: Buffer.from('x') })), (o) => o.error !== undefined);
      expect(error!.name).to.equal('DependencyTimeoutException');
      expect(error!.message).to.equal(TIMED_OUT);
      expect((error as { $metadata?: { httpStatusCode?: number } }).$metadata?.httpStatusCode).to.equal(500);

      const created = await expectKmsError(kms.send(new CreateKeyCommand({})));
      expect([created.name, created.$metadata?.httpStatusCode]).to.deep.equal(['DependencyTimeoutException', 500]);
      // TagResource's model lists KMSInternalException but not DependencyTimeoutException.
      const tagged = await expectKmsError(kms.send(new TagResourceCommand({ KeyId: keyId, Tags: [{ TagKey: 'k', TagValue: 'v' }] })));
      expect([tagged.name, tagged.message, tagged.$metadata?.httpStatusCode]).to.deep.equal(['KMSInternalException', 'An internal error occurred.', 500]);

      // The Huawei dialect's answer for a dependency timing out.
      const { hw } = huaweiClient(() => server.endpoint);
      const huawei = await hw('create-key', { key_alias: 'during-outage' });
      expect([huawei.status, huawei.body.error?.error_code, huawei.body.error?.error_msg], huawei.raw).to.deep.equal([500, 'KMS.0102', 'Abnormal KMS I/O.']);

      const notReady = await ready();
      expect(notReady.status).to.equal(503);
      expect(notReady.body.failing).to.deep.equal(['store']);
      expect(notReady.body.checks.store).to.match(/did not answer in time/);
    } finally {
      pg.thaw();
    }

    // Back by itself: the pool opens new connections, the change feed listens again.
    const { value } = await until('CreateKey succeeding again', () => kms.send(new CreateKeyCommand({})), (o) => o.value !== undefined);
    expect((await ready()).status).to.equal(200);
    expect(Buffer.from((await kms.send(new DecryptCommand({ CiphertextBlob: blob }))).Plaintext!).toString()).to.equal('kept');
    const listed = ((await kms.send(new ListKeysCommand({}))).Keys ?? []).map((k) => k.KeyId);
    expect(listed).to.include.members([keyId, value!.KeyMetadata!.KeyId!]);
    const health = (await (await fetch(`${server.endpoint}/health`)).json()) as { missingMaterial: number; unknownTokenObjects: number };
    expect([health.missingMaterial, health.unknownTokenObjects]).to.deep.equal([0, 0]);
  });

  it('a stopped database: KMSInternalException, logged as the store failing (no stack, no "unexpected failure"), then served again when it is back', async () => {
    const kms = server.client();
    const keyId = (await kms.send(new CreateKeyCommand({}))).KeyMetadata!.KeyId!;
    const blob = (await kms.send(new EncryptCommand({ KeyId: keyId, Plaintext: Buffer.from('kept') }))).CiphertextBlob!;
    const logBefore = server.stderr().length;

    await pg.stop();
    try {
      // CreateKey must write: it cannot be answered from the node's read cache.
      const created = await expectKmsError(kms.send(new CreateKeyCommand({})));
      expect([created.name, created.message, created.$metadata?.httpStatusCode]).to.deep.equal(['KMSInternalException', 'An internal error occurred.', 500]);
      const tagged = await expectKmsError(kms.send(new TagResourceCommand({ KeyId: keyId, Tags: [{ TagKey: 'k', TagValue: 'v' }] })));
      expect([tagged.name, tagged.$metadata?.httpStatusCode]).to.deep.equal(['KMSInternalException', 500]);
      expect((await ready()).body.failing).to.deep.equal(['store']);
    } finally {
      await pg.start();
    }
    const during = server.stderr().slice(logBefore).split('\n');
    const storeFailures = during.filter((l) => l.includes('request failed in the metadata store'));
    expect(storeFailures.length, 'log lines of refused requests').to.be.greaterThan(0);
    for (const line of storeFailures) expect(line).to.match(/the PostgreSQL store is out of reach \((connect ECONNREFUSED|57P0[1-3]: |Connection terminated)/);
    expect(during.filter((l) => l.includes('unexpected failure'))).to.deep.equal([]);

    await until('CreateKey succeeding again', () => kms.send(new CreateKeyCommand({})), (o) => o.value !== undefined);
    expect(Buffer.from((await kms.send(new DecryptCommand({ CiphertextBlob: blob }))).Plaintext!).toString()).to.equal('kept');
    const health = (await (await fetch(`${server.endpoint}/health`)).json()) as { missingMaterial: number; unknownTokenObjects: number };
    expect([health.missingMaterial, health.unknownTokenObjects]).to.deep.equal([0, 0]);
  });

  it('a lock another session holds on the key records: DependencyTimeoutException once the deadline passes, served again when it is released', async () => {
    const kms = server.client();
    const keyId = (await kms.send(new CreateKeyCommand({}))).KeyMetadata!.KeyId!;
    const holder = new Client({ connectionString: url });
    await holder.connect();
    try {
      await holder.query('BEGIN');
      await holder.query('LOCK TABLE p11kms_keys IN ACCESS EXCLUSIVE MODE');
      const { error } = await until('DescribeKey failing behind the lock', () => kms.send(new DescribeKeyCommand({ KeyId: keyId })), (o) => o.error !== undefined);
      expect([error!.name, error!.message]).to.deep.equal(['DependencyTimeoutException', TIMED_OUT]);
      expect((await ready()).status).to.equal(503);
      await holder.query('ROLLBACK');
    } finally {
      await holder.end();
    }
    await until('DescribeKey answering again', () => kms.send(new DescribeKeyCommand({ KeyId: keyId })), (o) => o.value !== undefined);
    expect((await ready()).status).to.equal(200);
  });
});
