import { spawn, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as http from 'node:http';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import {
  CreateAliasCommand,
  CreateCustomKeyStoreCommand,
  CreateGrantCommand,
  CreateKeyCommand,
  DecryptCommand,
  DescribeCustomKeyStoresCommand,
  DescribeKeyCommand,
  EnableKeyRotationCommand,
  EncryptCommand,
  KMSClient,
  ListGrantsCommand,
  ListKeyRotationsCommand,
  ScheduleKeyDeletionCommand,
} from '@aws-sdk/client-kms';
import { NodeHttpHandler } from '@smithy/node-http-handler';
import { expect } from 'chai';
import { freshDatabaseUrl } from '../support/postgres';
import { objectFile } from '../support/softhsm2-object-file';
import { expectKmsError, TestServer } from '../support/server';

const MAIN = path.resolve(__dirname, '..', '..', 'src', 'main.js');
const DAY_S = 24 * 60 * 60;

const tempDir = (name: string) => fs.mkdtempSync(path.join(os.tmpdir(), `p11kms-${name}-`));
const count = (text: string, pattern: RegExp) => (text.match(new RegExp(pattern.source, 'g')) ?? []).length;

function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const probe = net.createServer().listen(0, '127.0.0.1', () => {
      const { port } = probe.address() as net.AddressInfo;
      probe.close(() => resolve(port));
    });
  });
}

async function waitForCount(server: TestServer, pattern: RegExp, n: number, tries = 2_000): Promise<void> {
  for (let i = 0; count(server.stderr(), pattern) < n; i++) {
    if (i >= tries) throw new Error(`the log never showed ${pattern} ${n} times:\n${server.stderr().slice(-2000)}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

function cli(...args: string[]): { status: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [MAIN, ...args], { encoding: 'utf8' });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

describe('cluster duties: workers, background work once, store migrate', function () {
  this.timeout(120_000);

  it('with a shared store, reconciliation removes an object file a crash left half-made once nobody has written it for the lease, and no other', async () => {
    const server = await TestServer.start({ sweepIntervalSeconds: 1, env: { P11KMS_STORE_URL: await freshDatabaseUrl(), P11KMS_INTENT_LEASE_SECONDS: '60' } });
    try {
      const client = server.client();
      const keyId = (await client.send(new CreateKeyCommand({}))).KeyMetadata!.KeyId!;
      const tokens = path.join(server.dataDir, 'tokens');
      const tokenDir = path.join(tokens, fs.readdirSync(tokens).find((d) => fs.existsSync(path.join(tokens, d, 'token.object')))!);
      // What SoftHSM2 has written when a kill lands before the template: its defaults, CKA_TOKEN false.
      const remnant = objectFile([
        [0, 2, 4],
        [1, 1, false],
        [3, 3, Buffer.alloc(0)],
        [0x11, 3, Buffer.alloc(0)],
      ]);
      const stale = path.join(tokenDir, '0badc0de-0000-0000-0000-000000000001.object');
      const recent = path.join(tokenDir, '0badc0de-0000-0000-0000-000000000002.object');
      fs.writeFileSync(stale, remnant);
      fs.writeFileSync(recent, remnant);
      const anHourAgo = new Date(Date.now() - 3_600_000);
      fs.utimesSync(stale, anHourAgo, anHourAgo);
      await waitForCount(server, /removed token object files a crash left unfinished/, 1);
      expect(fs.existsSync(stale), 'unwritten for longer than the lease').to.equal(false);
      expect(fs.existsSync(recent), 'written within the lease: it may be a creation running now').to.equal(true);
      const { CiphertextBlob } = await client.send(new EncryptCommand({ KeyId: keyId, Plaintext: Buffer.from('still served') }));
      expect(Buffer.from((await client.send(new DecryptCommand({ CiphertextBlob }))).Plaintext!).toString()).to.equal('still served');
    } finally {
      await server.stop();
    }
  });

  it('--workers 2 serves from two processes on one port, replaces a crashed worker, and stops on SIGTERM', async () => {
    const server = await TestServer.start({ env: { P11KMS_STORE_URL: await freshDatabaseUrl(), P11KMS_WORKERS: '2' } });
    try {
      await waitForCount(server, /"msg":"worker listening"/, 2);
      const pids = [...server.stderr().matchAll(/"workerPid":(\d+)[^\n]*"msg":"worker listening"/g)].map((m) => Number(m[1]));
      expect(new Set(pids).size).to.equal(2);
      const { KeyMetadata } = await server.client().send(new CreateKeyCommand({}));

      process.kill(pids[0], 'SIGKILL');
      await waitForCount(server, /"msg":"worker died; starting another"/, 1);
      await waitForCount(server, /"msg":"worker listening"/, 3);
      const client = server.client();
      for (let i = 0; i < 10; i++) {
        const { CiphertextBlob } = await client.send(new EncryptCommand({ KeyId: KeyMetadata!.KeyId!, Plaintext: Buffer.from(`n${i}`) }));
        expect(Buffer.from((await client.send(new DecryptCommand({ CiphertextBlob }))).Plaintext!).toString()).to.equal(`n${i}`);
      }
      // systemctl reload: the supervisor passes SIGHUP on to every worker and keeps serving.
      server.sendSignal('SIGHUP');
      await waitForCount(server, /"msg":"SIGHUP: credentials and TLS material reloaded"/, 2);
      expect((await client.send(new EncryptCommand({ KeyId: KeyMetadata!.KeyId!, Plaintext: Buffer.from('after reload') }))).CiphertextBlob).to.be.instanceOf(Uint8Array);
    } finally {
      await server.stop();
    }
    expect(server.stderr()).to.match(/"msg":"all workers stopped"/);
  });

  it('--workers 2: kill -9 of a worker under load on new connections leaves no request unanswered', async () => {
    const server = await TestServer.start({ env: { P11KMS_STORE_URL: await freshDatabaseUrl(), P11KMS_WORKERS: '2' } });
    try {
      await waitForCount(server, /"msg":"worker listening"/, 2);
      const pid = Number(/"workerPid":(\d+)[^\n]*"msg":"worker listening"/.exec(server.stderr())![1]);
      const { KeyMetadata } = await server.client().send(new CreateKeyCommand({}));
      // One TCP connection per request: each is accepted by the primary and handed to a worker.
      const fresh = new KMSClient({
        endpoint: server.endpoint,
        region: 'us-east-1',
        credentials: { accessKeyId: 'AKIDTEST', secretAccessKey: 'test-secret' },
        maxAttempts: 1,
        requestHandler: new NodeHttpHandler({ httpAgent: new http.Agent({ keepAlive: false }) }),
      });
      let answered = 0;
      let stop = false;
      let killed = false;
      const failures: string[] = [];
      const clients = Array.from({ length: 16 }, async () => {
        while (!stop) {
          try {
            await fresh.send(new EncryptCommand({ KeyId: KeyMetadata!.KeyId!, Plaintext: Buffer.from('x') }));
            answered++;
          } catch (err) {
            failures.push(`${(err as Error).name}: ${(err as Error).message}`);
          }
          if (answered >= 40 && !killed) {
            killed = true;
            process.kill(pid, 'SIGKILL');
          }
        }
      });
      await waitForCount(server, /"msg":"worker listening"/, 3);
      const target = answered + 200;
      while (answered < target) await new Promise((r) => setTimeout(r, 10));
      stop = true;
      // A connection the primary accepted for the dead worker and never closed would hang here.
      await Promise.all(clients);
      // Only requests the dead worker held fail, as a broken connection, never with an answer.
      for (const f of failures) expect(f).to.match(/ECONNRESET|socket hang up|EPIPE/);
    } finally {
      await server.stop();
    }
  });

  it('--workers 2: both workers killed at once are both replaced; the supervisor stays', async () => {
    // A port of its own, as in production: with port 0, workers started after every one died get another.
    const server = await TestServer.start({ env: { P11KMS_STORE_URL: await freshDatabaseUrl(), P11KMS_WORKERS: '2', P11KMS_PORT: String(await freePort()) } });
    let supervisorExited = false;
    void server.exited.then(() => (supervisorExited = true));
    try {
      await waitForCount(server, /"msg":"worker listening"/, 2);
      const pids = [...server.stderr().matchAll(/"workerPid":(\d+)[^\n]*"msg":"worker listening"/g)].map((m) => Number(m[1]));
      for (const pid of pids) process.kill(pid, 'SIGKILL');
      await waitForCount(server, /"msg":"worker died; starting another"/, 2);
      await waitForCount(server, /"msg":"worker listening"/, 4).catch((err: Error) => {
        throw new Error(`${err.message}\nsupervisor exited: ${supervisorExited}`);
      });
      await server.client().send(new CreateKeyCommand({}));
    } finally {
      await server.stop();
    }
  });

  it('--workers 2 whose workers cannot start (PostgreSQL refusing connections) gives up with exit status 1, saying why', async () => {
    // A port nothing listens on: every worker fails at opening the store, before the token.
    const port = await freePort();
    const env = { ...process.env, P11KMS_STORE_URL: `postgres://kms@127.0.0.1:${port}/none`, P11KMS_WORKERS: '2', P11KMS_PORT: '0', P11KMS_DATA_DIR: tempDir('workers-no-store') };
    const child = spawn(process.execPath, [MAIN, 'serve'], { env, stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
    const status = await new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
    expect(status, stderr.slice(-2000)).to.equal(1);
    expect(stderr).to.match(/p11kms: \d+ workers in a row died before serving \(see the log above\); stopping/);
    expect(stderr).to.match(/connect ECONNREFUSED/);
  });

  it('refuses --workers 2 on the JSON store with a message saying why', () => {
    const r = cli('serve', '--workers', '2', '--data-dir', tempDir('json-workers'), '--port', '0');
    expect(r.status).to.equal(2);
    expect(r.stderr).to.match(/workers 2 needs the PostgreSQL store \(P11KMS_STORE_URL=postgres:\/\/…\)/);
  });

  it('runs deletion and rotation once across two nodes, and another node takes the work over when its runner is killed', async () => {
    const dataDir = tempDir('cluster-sweep');
    const options = { dataDir, env: { P11KMS_STORE_URL: await freshDatabaseUrl() }, sweepIntervalSeconds: 1 };
    let [a, b] = await Promise.all([TestServer.start(options), TestServer.start(options)]);
    const rotating = (await a.client().send(new CreateKeyCommand({}))).KeyMetadata!.KeyId!;
    await a.client().send(new EnableKeyRotationCommand({ KeyId: rotating, RotationPeriodInDays: 90 }));
    const deleting = (await b.client().send(new CreateKeyCommand({}))).KeyMetadata!.KeyId!;
    await b.client().send(new ScheduleKeyDeletionCommand({ KeyId: deleting, PendingWindowInDays: 7 }));
    await Promise.all([a.stop(), b.stop()]);

    // 100 days later, for both nodes (clients sign at the same offset).
    const later = { ...options, clockOffsetSeconds: 100 * DAY_S };
    [a, b] = await Promise.all([TestServer.start(later), TestServer.start(later)]);
    const client = a.client({ clockOffsetMs: 100 * DAY_S * 1000 });
    try {
      for (let i = 0; ; i++) {
        const gone = await client.send(new DescribeKeyCommand({ KeyId: deleting })).then(
          () => false,
          (e: Error) => e.name === 'NotFoundException',
        );
        const rotated = (await client.send(new ListKeyRotationsCommand({ KeyId: rotating }))).Rotations!.length > 0;
        if (gone && rotated) break;
        expect(i, 'the sweeps never ran').to.be.below(400);
        await new Promise((r) => setTimeout(r, 25));
      }
      const logs = a.stderr() + b.stderr();
      expect(count(logs, /"msg":"key material rotated automatically"/)).to.equal(1);
      expect(count(logs, /"msg":"key deleted at the end of its waiting period"/)).to.equal(1);
      expect((await client.send(new ListKeyRotationsCommand({ KeyId: rotating }))).Rotations).to.have.length(1);

      const taken = /"msg":"this process now runs this background task for the cluster"/;
      const [runner, other] = count(a.stderr(), taken) > 0 ? [a, b] : [b, a];
      expect(count(other.stderr(), taken), 'only one runner').to.equal(0);
      await runner.kill();
      await waitForCount(other, taken, 1);
    } finally {
      await Promise.all([a.stop(), b.stop()]);
    }
  });

  it('store migrate copies a JSON store into PostgreSQL and back, custom key stores too: idempotent, counted, verified, and the keys keep working', async () => {
    const dataDir = tempDir('migrate');
    // A configured cluster, for a custom key store record (never connected here).
    const backendProfile = path.join(dataDir, 'backend.json');
    fs.writeFileSync(backendProfile, JSON.stringify({ name: 'backend', module: '/usr/lib/softhsm/libsofthsm2.so', tokenLabel: 'no-such-token' }));
    const env = { P11KMS_TOKEN_BACKENDS: `cluster-migratedstore=${backendProfile}` };
    const json = await TestServer.start({ dataDir, env });
    const c = json.client();
    const trustAnchor = fs.readFileSync(path.resolve(__dirname, '..', '..', '..', 'test', 'fixtures', 'trust-anchor.pem'), 'utf8').trim();
    const { CustomKeyStoreId } = await c.send(new CreateCustomKeyStoreCommand({ CustomKeyStoreName: 'migrated', CloudHsmClusterId: 'cluster-migratedstore', TrustAnchorCertificate: trustAnchor, KeyStorePassword: 'backend-pin' }));
    const keyIds: string[] = [];
    for (let i = 0; i < 3; i++) keyIds.push((await c.send(new CreateKeyCommand({ Description: `k${i}` }))).KeyMetadata!.KeyId!);
    await c.send(new CreateAliasCommand({ AliasName: 'alias/migrated', TargetKeyId: keyIds[0] }));
    await c.send(new CreateGrantCommand({ KeyId: keyIds[1], GranteePrincipal: 'arn:aws:iam::111122223333:user/bob', Operations: ['Decrypt'], Name: 'g' }));
    const { CiphertextBlob } = await c.send(new EncryptCommand({ KeyId: 'alias/migrated', Plaintext: Buffer.from('kept') }));
    await json.stop();
    // A removal not finished (its token destroy failed): the target must carry it on.
    const storeFile = path.join(dataDir, 'metadata.json');
    const removal = { creationId: 'ab'.repeat(16), keyId: keyIds[2], purpose: 'removal', createdAt: Date.now(), owner: 'test:1' };
    fs.writeFileSync(storeFile, JSON.stringify({ ...JSON.parse(fs.readFileSync(storeFile, 'utf8')), intents: [removal] }));

    const url = await freshDatabaseUrl();
    const first = cli('store', 'migrate', '--from', dataDir, '--to', url);
    expect(first.status, first.stderr).to.equal(0);
    expect(first.stdout).to.contain('keys: 3 in source, 3 copied, 0 already there; 3 in target');
    expect(first.stdout).to.contain('aliases: 1 in source, 1 copied, 0 already there; 1 in target');
    expect(first.stdout).to.contain('grants: 1 in source, 1 copied, 0 already there; 1 in target');
    expect(first.stdout).to.contain('customKeyStores: 1 in source, 1 copied, 0 already there; 1 in target');
    expect(first.stdout).to.contain('intents: 1 in source, 1 copied, 0 already there; 1 in target');
    expect(first.stdout).to.contain('verified');
    const again = cli('store', 'migrate', '--from', dataDir, '--to', url);
    expect(again.stdout).to.contain('keys: 3 in source, 0 copied, 3 already there; 3 in target');

    const pg = await TestServer.start({ dataDir, env: { ...env, P11KMS_STORE_URL: url } });
    try {
      const p = pg.client();
      expect((await p.send(new DescribeCustomKeyStoresCommand({}))).CustomKeyStores!.map((s) => [s.CustomKeyStoreId, s.CustomKeyStoreName])).to.deep.equal([[CustomKeyStoreId, 'migrated']]);
      expect(Buffer.from((await p.send(new DecryptCommand({ CiphertextBlob }))).Plaintext!).toString()).to.equal('kept');
      expect((await p.send(new DescribeKeyCommand({ KeyId: 'alias/migrated' }))).KeyMetadata!.KeyId).to.equal(keyIds[0]);
      expect((await p.send(new ListGrantsCommand({ KeyId: keyIds[1] }))).Grants!.map((g) => g.Name)).to.deep.equal(['g']);
      await expectKmsError(p.send(new CreateAliasCommand({ AliasName: 'alias/migrated', TargetKeyId: keyIds[2] })));
    } finally {
      await pg.stop();
    }

    const back = tempDir('migrate-back');
    const home = cli('store', 'migrate', '--from', url, '--to', back);
    expect(home.status, home.stderr).to.equal(0);
    expect(home.stdout).to.contain('keys: 3 in source, 3 copied, 0 already there; 3 in target');
    // The PostgreSQL start finished the removal (its objects were gone already) and dropped it.
    expect(home.stdout).to.contain('intents: 0 in source, 0 copied, 0 already there; 0 in target');
    const file = JSON.parse(fs.readFileSync(path.join(back, 'metadata.json'), 'utf8')) as { keys: unknown[]; aliases: unknown[]; grants: unknown[]; customKeyStores: unknown[] };
    expect([file.keys.length, file.aliases.length, file.grants.length, file.customKeyStores.length]).to.deep.equal([3, 1, 1, 1]);
  });

  it('store migrate refuses, both ways, while the source holds audit records its trail may lack (outbox entries); one start of the source writes them and it goes through', async () => {
    const dataDir = tempDir('migrate-outbox');
    const auditDir = path.join(dataDir, 'audit');
    const url = await freshDatabaseUrl();
    const createKeyRecords = (arn: string) =>
      fs
        .readdirSync(auditDir, { recursive: true, encoding: 'utf8' })
        .filter((f) => /trail-.*\.jsonl$/.test(f))
        .flatMap((f) => fs.readFileSync(path.join(auditDir, f), 'utf8').split('\n').filter((l) => l.startsWith('{')))
        .map((l) => JSON.parse(l) as { eventName: string; resources?: Array<{ ARN: string }> })
        .filter((r) => r.eventName === 'CreateKey' && r.resources?.some((x) => x.ARN === arn));

    // JSON → PostgreSQL: killed after a CreateKey, whose entry is still in metadata.json.
    const json = await TestServer.start({ dataDir });
    const fromJson = (await json.client().send(new CreateKeyCommand({}))).KeyMetadata!.Arn!;
    await json.kill();
    const refused = cli('store', 'migrate', '--from', dataDir, '--to', url);
    expect(refused.status).to.equal(1);
    expect(refused.stderr).to.match(/the source holds 1 audit outbox entry: .*start p11kms on the source once .*Nothing was copied/);
    expect(cli('store', 'migrate', '--from', url, '--to', tempDir('migrate-outbox-probe')).stdout, 'nothing reached PostgreSQL').to.contain('keys: 0 in source');
    await (await TestServer.start({ dataDir })).stop();
    const copied = cli('store', 'migrate', '--from', dataDir, '--to', url);
    expect(copied.status, copied.stderr).to.equal(0);
    expect(copied.stdout).to.contain('keys: 1 in source, 1 copied');
    expect(createKeyRecords(fromJson), 'its record, once').to.have.length(1);

    // PostgreSQL → JSON: a cluster process killed after a CreateKey.
    const pg = await TestServer.start({ dataDir, env: { P11KMS_STORE_URL: url } });
    const fromPg = (await pg.client().send(new CreateKeyCommand({}))).KeyMetadata!.Arn!;
    await pg.kill();
    const back = tempDir('migrate-outbox-back');
    const refusedBack = cli('store', 'migrate', '--from', url, '--to', back);
    expect(refusedBack.status).to.equal(1);
    expect(refusedBack.stderr).to.match(/the source holds 1 audit outbox entry: .*Nothing was copied/);
    expect(cli('store', 'migrate', '--from', back, '--to', tempDir('migrate-outbox-probe')).stdout, 'nothing reached the JSON store').to.contain('keys: 0 in source');
    // The dead process's entry goes once its database session has ended (the next delivery, within a second).
    const once = await TestServer.start({ dataDir, sweepIntervalSeconds: 1, env: { P11KMS_STORE_URL: url } });
    await once.waitForLog(/written from the audit outbox/);
    await once.stop();
    const home = cli('store', 'migrate', '--from', url, '--to', back);
    expect(home.status, home.stderr).to.equal(0);
    expect(home.stdout).to.contain('keys: 2 in source, 2 copied');
    expect(createKeyRecords(fromPg), 'its record, once').to.have.length(1);
  });
});
