/**
 * Load shedding and the SIGTERM drain of a real p11kms process on a real SoftHSM2 token with a
 * small session pool: ThrottlingException (AWS's text, HTTP 400) instead of a queue that grows,
 * the audit digest's own session, and in-flight work finished before exit.
 */
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { CreateKeyCommand, GenerateDataKeyPairWithoutPlaintextCommand, ListKeysCommand, SignCommand, type KMSClient } from '@aws-sdk/client-kms';
import { expect } from 'chai';
import { get, ROOT, smallPoolProfile, THROTTLED, waitForLogCount } from '../support/production';
import { expectKmsError, metricSample, TestServer } from '../support/server';

describe('load shedding and SIGTERM', function () {
  this.timeout(60_000);
  const work = fs.mkdtempSync(path.join(os.tmpdir(), 'p11kms-shedding-'));
  after(() => fs.rmSync(work, { recursive: true, force: true }));

  it('sheds what a small pool cannot queue with ThrottlingException, never a 5xx', async function () {
    const server = await TestServer.start({ env: { P11KMS_HSM_PROFILE: smallPoolProfile(work, 1, 1) } });
    try {
      const kms = server.client();
      const wrapping = (await kms.send(new CreateKeyCommand({}))).KeyMetadata!.KeyId!;
      const offered = 24;
      const results = await Promise.allSettled(
        Array.from({ length: offered }, () => kms.send(new GenerateDataKeyPairWithoutPlaintextCommand({ KeyId: wrapping, KeyPairSpec: 'RSA_2048' }))),
      );
      const admitted = results.filter((r) => r.status === 'fulfilled').length;
      const errors = results.filter((r) => r.status === 'rejected').map((r) => (r as PromiseRejectedResult).reason as { name: string; message: string; $metadata: { httpStatusCode: number } });
      expect(admitted).to.be.greaterThan(0);
      expect(errors.length).to.be.greaterThan(0);
      for (const err of errors) expect([err.name, err.message, err.$metadata.httpStatusCode]).to.deep.equal(['ThrottlingException', THROTTLED, 400]);
      const metrics = (await get(`${server.endpoint}/metrics`)).body;
      expect(metricSample(metrics, 'p11kms_token_shed_total ')).to.equal(errors.length);
      expect(metrics).to.match(new RegExp(`^p11kms_requests_total\\{dialect="aws-json",operation="GenerateDataKeyPairWithoutPlaintext",error="ThrottlingException"\\} ${errors.length}$`, 'm'));
    } finally {
      await server.kill();
    }
  });

  it('sheds new requests while the oldest waiter has waited longer than sessionQueueMaxWaitMs; those already waiting are served', async function () {
    // Pre: only a count limited the queue, so a queue far below the limit that stood for
    // seconds (a token short of capacity) kept admitting requests to wait behind it.
    const { server, faults } = await onOneSession('standing-queue');
    try {
      const kms = server.client();
      const wrapping = (await kms.send(new CreateKeyCommand({}))).KeyMetadata!.KeyId!;
      const pair = () => kms.send(new GenerateDataKeyPairWithoutPlaintextCommand({ KeyId: wrapping, KeyPairSpec: 'ECC_NIST_P256' }));
      // The one session is held by a generation the token answers only when told to.
      fs.writeFileSync(faults, JSON.stringify([{ call: 'C_GenerateKeyPairAsync', hold: true }]));
      const holding = pair();
      const waiting = pair();
      await queueStanding(server);
      const refused = await expectKmsError(pair());
      expect([refused.name, refused.message, refused.$metadata?.httpStatusCode]).to.deep.equal(['ThrottlingException', THROTTLED, 400]);
      // A burst while the queue still stands: every request refused, and the log sums them
      // up (at most a line a second) instead of a line per refusal.
      const burst = await Promise.all(Array.from({ length: 12 }, () => expectKmsError(pair())));
      expect(burst.map((e) => e.name)).to.deep.equal(Array(12).fill('ThrottlingException'));
      const shedLines = () => server.stderr().split('\n').filter((l) => l.includes('load shed:')).map((l) => JSON.parse(l) as { refused: number; why: string });
      for (let polls = 0; shedLines().reduce((n, l) => n + l.refused, 0) < 13; polls++) {
        if (polls > 1000) throw new Error(`the log never accounted for the 13 refusals: ${JSON.stringify(shedLines())}`);
        await new Promise((r) => setTimeout(r, 20));
      }
      expect(shedLines().reduce((n, l) => n + l.refused, 0)).to.equal(13);
      expect(shedLines().length).to.be.below(13);
      expect(shedLines()[0].why).to.match(/^session queue standing \(oldest waiting \d+ ms\)$/);
      fs.writeFileSync(faults, '[]');
      const served = await Promise.all([holding, waiting]);
      expect(served.map((r) => r.KeyPairSpec)).to.deep.equal(['ECC_NIST_P256', 'ECC_NIST_P256']);
      const metrics = (await get(`${server.endpoint}/metrics`)).body;
      expect(metricSample(metrics, 'p11kms_token_shed_total ')).to.equal(13);
      expect(metricSample(metrics, 'p11kms_token_queue_oldest_wait_seconds ')).to.equal(0);
      // The queue is gone, so the next request is admitted again.
      expect((await pair()).KeyPairSpec).to.equal('ECC_NIST_P256');
    } finally {
      await server.kill();
    }
  });

  it('signs the audit tail while it sheds, on a session of its own: no answer waits for the queue', async function () {
    // Pre: the digest looked for a newer signing key on a sheddable call first, so while the
    // queue stood it failed, was asked for again at the next record, and the tail stayed
    // unsigned past its bound (README: "The audit digest signature is never shed"). Then it
    // waited for a pooled session behind the queue, and the trail, holding its writes for the
    // digest, held every answer with it.
    const { server, faults } = await onOneSession('digest-under-shedding', { P11KMS_AUDIT_UNSIGNED_MAX_RECORDS: '3', P11KMS_AUDIT_UNSIGNED_MAX_SECONDS: '3600' });
    try {
      const kms = server.client();
      const signing = (await kms.send(new CreateKeyCommand({ KeySpec: 'ECC_NIST_P256', KeyUsage: 'SIGN_VERIFY' }))).KeyMetadata!.KeyId!;
      // Sign makes one token run (an operation with a second one may be shed at it).
      const sign = () => kms.send(new SignCommand({ KeyId: signing, Message: Buffer.from('m'), SigningAlgorithm: 'ECDSA_SHA_256' }));
      const auditDir = path.join(server.dataDir, 'audit');
      const tailDigests = () => fs.readdirSync(auditDir).filter((f) => /^digest-.*\.json$/.test(f)).map((f) => (JSON.parse(fs.readFileSync(path.join(auditDir, f), 'utf8')) as { digest: { reason: string } }).digest.reason).filter((r) => r.includes('tail:records')).length;
      const before = tailDigests();
      // The first signature holds the one pooled session; the digest's own signature runs.
      fs.writeFileSync(faults, JSON.stringify([{ call: 'C_SignAsync', hold: true }]));
      const holding = sign();
      const waiting = sign();
      await queueStanding(server);
      // Six refused requests are six records: the tail passes its bound of three.
      const refusals = Array.from({ length: 6 }, () => expectKmsError(sign()));
      for (let polls = 0; tailDigests() === before; polls++) {
        if (polls > 1000) throw new Error('no digest signed the tail while a client held the pooled session');
        await new Promise((r) => setTimeout(r, 20));
      }
      // Answered while the session is still held: the trail did not wait for the queue.
      expect((await Promise.all(refusals)).map((e) => e.name)).to.deep.equal(Array(6).fill('ThrottlingException'));
      expect(metricSample((await get(`${server.endpoint}/metrics`)).body, 'p11kms_token_sessions_waiting{pool="operations"} ')).to.equal(1);
      fs.writeFileSync(faults, '[]');
      await Promise.all([holding, waiting]);
      expect(server.stderr()).to.not.include('audit digest for the unsigned tail failed');
      execFileSync(process.execPath, [path.join(ROOT, 'dist', 'src', 'main.js'), 'audit', 'verify', '--dir', auditDir], { stdio: 'pipe' });
    } finally {
      await server.kill();
    }
  });

  it('counts the duty session in the token session gauges: one beyond the pool, in use while a digest is signed', async function () {
    // Pre: the gauges counted the pool only, so an operator sizing the token's session limit
    // from them missed the session every digest is signed on.
    const { server, faults } = await onOneSession('duty-gauges', { P11KMS_AUDIT_UNSIGNED_MAX_RECORDS: '3', P11KMS_AUDIT_UNSIGNED_MAX_SECONDS: '3600' });
    try {
      const kms = server.client();
      const auditDir = path.join(server.dataDir, 'audit');
      const tailDigests = () => fs.readdirSync(auditDir).filter((f) => /^digest-.*\.json$/.test(f)).map((f) => (JSON.parse(fs.readFileSync(path.join(auditDir, f), 'utf8')) as { digest: { reason: string } }).digest.reason).filter((r) => r.includes('tail:records')).length;
      const sessions = async () => {
        const body = (await get(`${server.endpoint}/metrics`)).body;
        const pools = (name: string) => ['operations', 'duty'].map((pool) => metricSample(body, `${name}{pool="${pool}"} `));
        return { sessions: pools('p11kms_token_sessions'), inUse: pools('p11kms_token_sessions_in_use'), waiting: pools('p11kms_token_sessions_waiting') };
      };
      const before = tailDigests();
      // The digest's signature is held (the only signature made meanwhile): its session stays in use.
      fs.writeFileSync(faults, JSON.stringify([{ call: 'C_SignAsync', hold: true }]));
      // Three records: the unsigned tail reaches its bound and a digest signs it.
      const lists = Array.from({ length: 3 }, () => kms.send(new ListKeysCommand({})));
      await waitForLogCount(server, /injected token fault/, 1);
      expect(await sessions()).to.deep.equal({ sessions: [1, 1], inUse: [0, 1], waiting: [0, 0] });
      fs.writeFileSync(faults, '[]');
      await Promise.all(lists);
      for (let polls = 0; tailDigests() === before; polls++) {
        if (polls > 1000) throw new Error('no digest signed the tail');
        await new Promise((r) => setTimeout(r, 20));
      }
      expect(await sessions()).to.deep.equal({ sessions: [1, 1], inUse: [0, 0], waiting: [0, 0] });
    } finally {
      await server.kill();
    }
  });

  it('sheds an operation only at its first token run: GenerateDataKeyPair admitted and generating is not refused at its seal', async function () {
    // Pre: every token run could be shed, so a pair generated while the queue behind it
    // stood was refused at its second run (the seal) and its generation thrown away.
    const { server, faults } = await onOneSession('second-run');
    try {
      const kms = server.client();
      const wrapping = (await kms.send(new CreateKeyCommand({}))).KeyMetadata!.KeyId!;
      const rsa = (await kms.send(new CreateKeyCommand({ KeySpec: 'RSA_4096', KeyUsage: 'SIGN_VERIFY' }))).KeyMetadata!.KeyId!;
      // An RSA-4096 signature holds the session long enough for the generation's next run to ask for it.
      const slowSign = () => kms.send(new SignCommand({ KeyId: rsa, Message: Buffer.from('m'), SigningAlgorithm: 'RSASSA_PSS_SHA_512' }));
      fs.writeFileSync(faults, JSON.stringify([{ call: 'C_GenerateKeyPairAsync', hold: true }]));
      const pairing = kms.send(new GenerateDataKeyPairWithoutPlaintextCommand({ KeyId: wrapping, KeyPairSpec: 'ECC_NIST_P256' }));
      for (let polls = 0; !server.stderr().includes('injected token fault'); polls++) {
        if (polls > 1000) throw new Error('the generation never reached the token');
        await new Promise((r) => setTimeout(r, 20));
      }
      const signs = [slowSign(), slowSign()];
      for (let polls = 0; ; polls++) {
        const metrics = (await get(`${server.endpoint}/metrics`)).body;
        if (metricSample(metrics, 'p11kms_token_sessions_waiting{pool="operations"} ') === 2 && metricSample(metrics, 'p11kms_token_queue_oldest_wait_seconds ')! > 0.05) break;
        if (polls > 1000) throw new Error('the two signatures never stood in the queue');
        await new Promise((r) => setTimeout(r, 20));
      }
      fs.writeFileSync(faults, '[]');
      expect((await pairing).KeyPairSpec).to.equal('ECC_NIST_P256');
      expect((await Promise.all(signs)).map((r) => r.SigningAlgorithm)).to.deep.equal(['RSASSA_PSS_SHA_512', 'RSASSA_PSS_SHA_512']);
      expect(metricSample((await get(`${server.endpoint}/metrics`)).body, 'p11kms_token_shed_total ')).to.equal(0);
    } finally {
      await server.kill();
    }
  });

  /**
   * A service on a one-session pool that sheds past 50 ms of queueing, with token faults read
   * from `faults` (empty at first): a test holds the session with a `hold` fault.
   */
  async function onOneSession(name: string, env: Record<string, string> = {}): Promise<{ server: TestServer; faults: string }> {
    const faults = path.join(work, `${name}-faults.json`);
    fs.writeFileSync(faults, '[]');
    const server = await TestServer.start({ env: { NODE_ENV: 'test', P11KMS_TEST_FAULTS: faults, P11KMS_HSM_PROFILE: smallPoolProfile(work, 1, 1024, 50), ...env } });
    return { server, faults };
  }

  /** Resolves once one operation waits for the one session and has waited past the 50 ms target. */
  async function queueStanding(server: TestServer): Promise<void> {
    for (let polls = 0; ; polls++) {
      const metrics = (await get(`${server.endpoint}/metrics`)).body;
      if (metricSample(metrics, 'p11kms_token_sessions_waiting{pool="operations"} ') === 1 && metricSample(metrics, 'p11kms_token_queue_oldest_wait_seconds ')! > 0.05) return;
      if (polls > 1000) throw new Error(`the queue never stood past 50 ms: ${metrics.split('\n').filter((l) => l.startsWith('p11kms_token_')).join('; ')}`);
      await new Promise((r) => setTimeout(r, 20));
    }
  }

  /** Starts two slow requests on a one-session pool and resolves once both are inside the service. */
  async function twoInFlight(server: TestServer, kms: KMSClient): Promise<Array<Promise<unknown>>> {
    const wrapping = (await kms.send(new CreateKeyCommand({}))).KeyMetadata!.KeyId!;
    const requests = [0, 1].map(() => kms.send(new GenerateDataKeyPairWithoutPlaintextCommand({ KeyId: wrapping, KeyPairSpec: 'RSA_4096' })));
    for (let i = 0; i < 400; i++) {
      const metrics = (await get(`${server.endpoint}/metrics`)).body;
      if (metricSample(metrics, 'p11kms_token_sessions_in_use{pool="operations"} ') === 1 && metricSample(metrics, 'p11kms_token_sessions_waiting{pool="operations"} ') === 1) return requests;
      await new Promise((r) => setTimeout(r, 20));
    }
    throw new Error('the two requests never were in flight together');
  }

  it('SIGTERM drains: in-flight requests finish, a final digest is signed, exit 0', async function () {
    const server = await TestServer.start({ env: { P11KMS_HSM_PROFILE: smallPoolProfile(work, 1, 4) } });
    const kms = server.client();
    const requests = await twoInFlight(server, kms);
    server.sendSignal('SIGTERM');
    const answers = await Promise.all(requests);
    expect(answers).to.have.length(2);
    expect(await server.exited).to.equal(0);
    expect(server.stderr()).to.match(/shut down cleanly/);
    const auditDir = path.join(server.dataDir, 'audit');
    const digests = fs.readdirSync(auditDir).filter((f) => /^digest-.*\.json$/.test(f)).sort();
    const last = JSON.parse(fs.readFileSync(path.join(auditDir, digests[digests.length - 1]), 'utf8')) as { digest: { reason: string } };
    expect(last.digest.reason).to.include('shutdown');
    execFileSync(process.execPath, [path.join(ROOT, 'dist', 'src', 'main.js'), 'audit', 'verify', '--dir', auditDir], { stdio: 'pipe' });
  });

  it('SIGTERM waits for a request whose client hung up: its token work finishes, its audit record is written, exit 0', async function () {
    // Pre: the drain waited for open connections only, and finalised the module under the
    // still-running RSA-4096 generation (the process died of SIGSEGV).
    const server = await TestServer.start({ env: { P11KMS_HSM_PROFILE: smallPoolProfile(work, 1, 4) } });
    const kms = server.client();
    const wrapping = (await kms.send(new CreateKeyCommand({}))).KeyMetadata!.KeyId!;
    const abandon = new AbortController();
    const request = kms
      .send(new GenerateDataKeyPairWithoutPlaintextCommand({ KeyId: wrapping, KeyPairSpec: 'RSA_4096' }), { abortSignal: abandon.signal })
      .catch((err: Error) => err.name);
    let inToken = false;
    for (let i = 0; i < 400 && !inToken; i++) {
      inToken = metricSample((await get(`${server.endpoint}/metrics`)).body, 'p11kms_token_sessions_in_use{pool="operations"} ') === 1;
      if (!inToken) await new Promise((r) => setTimeout(r, 20));
    }
    expect(inToken, 'the generation reached the token').to.equal(true);
    abandon.abort();
    expect(await request).to.equal('AbortError');
    server.sendSignal('SIGTERM');
    expect(await server.exited).to.equal(0);
    expect(server.stderr()).to.match(/shut down cleanly/);
    const auditDir = path.join(server.dataDir, 'audit');
    const records = fs
      .readdirSync(auditDir)
      .filter((f) => f.endsWith('.jsonl'))
      .flatMap((f) => fs.readFileSync(path.join(auditDir, f), 'utf8').split('\n').filter(Boolean));
    expect(records.some((line) => line.includes('"eventName":"GenerateDataKeyPairWithoutPlaintext"')), 'the abandoned request has its record').to.equal(true);
    execFileSync(process.execPath, [path.join(ROOT, 'dist', 'src', 'main.js'), 'audit', 'verify', '--dir', auditDir], { stdio: 'pipe' });
  });

  it('a second SIGTERM exits at once', async function () {
    const server = await TestServer.start({ env: { P11KMS_HSM_PROFILE: smallPoolProfile(work, 1, 4) } });
    const kms = server.client();
    const requests = Promise.allSettled(await twoInFlight(server, kms));
    server.sendSignal('SIGTERM');
    await server.waitForLog(/draining/);
    server.sendSignal('SIGTERM');
    expect(await server.exited).to.equal(1);
    expect(server.stderr()).to.match(/second stop signal: exiting at once/);
    const settled = await requests;
    expect(settled.some((r) => r.status === 'rejected'), 'the in-flight requests were cut').to.equal(true);
  });
});
