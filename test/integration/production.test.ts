/**
 * Running p11kms as a production service: HTTPS (AWS SDK, boto3 and the aws CLI with a test
 * CA), mutual TLS, SIGHUP reloads, /metrics, /health and /ready and request quotas — all
 * against real processes on real SoftHSM2 tokens. Load shedding and the SIGTERM drain:
 * load-shedding.test.ts.
 */
import { execFile, execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as https from 'node:https';
import * as os from 'node:os';
import * as path from 'node:path';
import * as tls from 'node:tls';
import {
  CreateKeyCommand,
  DecryptCommand,
  EncryptCommand,
  GenerateRandomCommand,
  type KMSClient,
  ListKeysCommand,
} from '@aws-sdk/client-kms';
import { expect } from 'chai';
import { get, THROTTLED, waitForLogCount } from '../support/production';
import { pythonWithBoto3 } from '../support/python';
import { expectKmsError, metricSample, serverPerSuite, TestServer } from '../support/server';
import { TestCa } from '../support/test-ca';

describe('production: TLS, mutual TLS, signals, metrics, readiness, quotas', function () {
  this.timeout(60_000);
  const work = fs.mkdtempSync(path.join(os.tmpdir(), 'p11kms-production-'));
  let ca: TestCa;
  let caPem: Buffer;
  const certFile = path.join(work, 'server-cert.pem');
  const keyFile = path.join(work, 'server-key.pem');
  const credentialsFile = path.join(work, 'credentials.json');
  const alice = { accessKeyId: 'AKIAPRODALICE', secretAccessKey: 'alice-secret', accountId: '111122223333', principalArn: 'arn:aws:iam::111122223333:user/alice' };
  const bob = { accessKeyId: 'AKIAPRODBOB', secretAccessKey: 'bob-secret', accountId: '444455556666', principalArn: 'arn:aws:iam::444455556666:user/bob' };

  before(function () {
    ca = new TestCa(work, 'main');
    caPem = fs.readFileSync(ca.cert);
    const first = ca.server('p11kms-first');
    fs.copyFileSync(first.cert, certFile);
    fs.copyFileSync(first.key, keyFile);
    fs.writeFileSync(credentialsFile, credentialsOf(alice));
  });

  /** A credentials file for these users, each allowed every KMS action by an identity policy. */
  function credentialsOf(...users: Array<typeof alice>): string {
    const policy = { Version: '2012-10-17', Statement: [{ Effect: 'Allow', Action: 'kms:*', Resource: '*' }] };
    return JSON.stringify({ accessKeys: users, identityPolicies: Object.fromEntries(users.map((u) => [u.principalArn, policy])) });
  }

  after(function () {
    fs.rmSync(work, { recursive: true, force: true });
  });

  describe('HTTPS', function () {
    let server: TestServer;
    let kms: KMSClient;
    let keyId: string;

    serverPerSuite({ auth: 'strict', credentialsFile, env: { P11KMS_TLS_CERT: certFile, P11KMS_TLS_KEY: keyFile } }, (started) => {
      server = started;
      kms = server.client({ ...alice, tls: { ca: caPem } });
    });

    it('serves HTTPS to the AWS SDK for JavaScript given the test CA', async function () {
      expect(server.endpoint).to.match(/^https:\/\/127\.0\.0\.1:\d+$/);
      keyId = (await kms.send(new CreateKeyCommand({}))).KeyMetadata!.KeyId!;
      const sealed = await kms.send(new EncryptCommand({ KeyId: keyId, Plaintext: Buffer.from('over TLS') }));
      const opened = await kms.send(new DecryptCommand({ CiphertextBlob: sealed.CiphertextBlob }));
      expect(Buffer.from(opened.Plaintext!).toString()).to.equal('over TLS');
    });

    it('is refused by a client that does not trust the CA, and refuses TLS 1.1', async function () {
      const untrusting = server.client(alice);
      const err = await expectKmsError(untrusting.send(new ListKeysCommand({})));
      expect(err.message).to.match(/self[- ]signed|unable to verify|certificate/i);
      const port = Number(new URL(server.endpoint).port);
      const old = await new Promise<string>((resolve) => {
        const socket = tls.connect({ host: '127.0.0.1', port, ca: caPem, maxVersion: 'TLSv1.1', minVersion: 'TLSv1' }, () => resolve('connected'));
        socket.on('error', (e) => resolve(e.message));
      });
      expect(old).to.not.equal('connected');
    });

    it('serves boto3 with verify= the CA bundle', async function () {
      const python = pythonWithBoto3();
      if (!python) {
        console.log('      skipping: no python3 with boto3 (scripts/run.sh installs python3-boto3)');
        this.skip();
      }
      const script = [
        'import boto3, json, sys',
        "c = boto3.client('kms', endpoint_url=sys.argv[1], region_name='us-east-1', aws_access_key_id=sys.argv[3], aws_secret_access_key=sys.argv[4], verify=sys.argv[2])",
        "k = c.create_key(Description='boto3 over TLS')['KeyMetadata']['KeyId']",
        "ct = c.encrypt(KeyId=k, Plaintext=b'boto3 plaintext')['CiphertextBlob']",
        "print(json.dumps({'keyId': k, 'plaintext': c.decrypt(CiphertextBlob=ct)['Plaintext'].decode()}))",
      ].join('\n');
      const out = await new Promise<string>((resolve, reject) =>
        execFile(python!, ['-c', script, server.endpoint, ca.cert, alice.accessKeyId, alice.secretAccessKey], { env: { PATH: process.env.PATH, HOME: work } }, (err, stdout, stderr) =>
          err ? reject(new Error(`${err.message}\n${stderr}`)) : resolve(stdout),
        ),
      );
      expect(JSON.parse(out).plaintext).to.equal('boto3 plaintext');
    });

    it('serves the aws CLI with --ca-bundle', async function () {
      try {
        execFileSync('aws', ['--version'], { stdio: 'ignore' });
      } catch {
        console.log('      skipping: the aws CLI is not installed');
        this.skip();
      }
      const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('AWS_')));
      Object.assign(env, {
        AWS_ACCESS_KEY_ID: alice.accessKeyId,
        AWS_SECRET_ACCESS_KEY: alice.secretAccessKey,
        AWS_DEFAULT_REGION: 'us-east-1',
        AWS_CONFIG_FILE: path.join(work, 'no-config'),
        AWS_SHARED_CREDENTIALS_FILE: path.join(work, 'no-credentials'),
        AWS_EC2_METADATA_DISABLED: 'true',
      });
      const out = await new Promise<string>((resolve, reject) =>
        execFile('aws', ['kms', 'list-keys', '--endpoint-url', server.endpoint, '--ca-bundle', ca.cert, '--output', 'json'], { env }, (err, stdout, stderr) =>
          err ? reject(new Error(`${err.message}\n${stderr}`)) : resolve(stdout),
        ),
      );
      expect((JSON.parse(out) as { Keys: Array<{ KeyId: string }> }).Keys.map((k) => k.KeyId)).to.include(keyId);
    });

    it('reloads the certificate on SIGHUP without dropping open connections', async function () {
      const agent = new https.Agent({ keepAlive: true, maxSockets: 1, ca: caPem });
      const before = await get(`${server.endpoint}/health`, { agent });
      expect(before.status).to.equal(200);
      const second = ca.server('p11kms-second');
      fs.copyFileSync(second.cert, certFile);
      fs.copyFileSync(second.key, keyFile);
      server.sendSignal('SIGHUP');
      await waitForLogCount(server, /credentials and TLS material reloaded/, 1);
      const sameConnection = await get(`${server.endpoint}/health`, { agent });
      expect(sameConnection.status).to.equal(200);
      expect(sameConnection.reused, 'the keep-alive connection survived the reload').to.equal(true);
      expect(sameConnection.peerSerial).to.equal(before.peerSerial);
      const fresh = await get(`${server.endpoint}/health`, { agent: new https.Agent({ ca: caPem }) });
      expect(fresh.status).to.equal(200);
      expect(fresh.peerSerial).to.not.equal(before.peerSerial);
      agent.destroy();
    });

    it('reloads the credentials file on SIGHUP; a broken file is refused, logged and the old one stays', async function () {
      const bobClient = server.client({ ...bob, tls: { ca: caPem } });
      expect((await expectKmsError(bobClient.send(new ListKeysCommand({})))).name).to.equal('UnrecognizedClientException');
      fs.writeFileSync(credentialsFile, credentialsOf(alice, bob));
      server.sendSignal('SIGHUP');
      await waitForLogCount(server, /credentials and TLS material reloaded/, 2);
      expect((await bobClient.send(new ListKeysCommand({}))).Keys).to.deep.equal([]);

      // A secret left unquoted: Node's own JSON error would quote the text around it.
      const brokenSecret = 'wJalrXUtnFEMIK7MDENGbPxRfiCYBROKENKEY';
      const broken = `{"accessKeys": [ {"accessKeyId": "AKIABROKEN", "secretAccessKey": ${brokenSecret}, "accountId": "111122223333"}]}`;
      fs.writeFileSync(credentialsFile, broken);
      server.sendSignal('SIGHUP');
      await waitForLogCount(server, /reload refused/, 1);
      const refusal = server.stderr().split('\n').find((l) => l.includes('reload refused'))!;
      // The README promises the log says which file and why.
      expect(refusal).to.include(`${credentialsFile}: not valid JSON (at line 1, column ${broken.indexOf(brokenSecret) + 1})`);
      for (let i = 0; i + 6 <= brokenSecret.length; i++) expect(refusal, 'a piece of the secret in the log').to.not.include(brokenSecret.slice(i, i + 6));
      expect(refusal).to.not.include(bob.secretAccessKey);
      // The file in force before the broken one still is.
      expect((await bobClient.send(new ListKeysCommand({}))).Keys).to.deep.equal([]);
      expect((await kms.send(new ListKeysCommand({}))).Keys!.map((k) => k.KeyId)).to.include(keyId);
      fs.writeFileSync(credentialsFile, credentialsOf(alice));
    });

    it('/metrics: requests, latency, token calls, pool, audit and store figures, without key ids or principals', async function () {
      const { status, body } = await get(`${server.endpoint}/metrics`, { ca: caPem });
      expect(status).to.equal(200);
      expect(body).to.match(/^p11kms_requests_total\{dialect="aws-json",operation="Encrypt",error="none"\} [1-9]/m);
      expect(body).to.match(/^p11kms_requests_total\{dialect="aws-json",operation="ListKeys",error="UnrecognizedClientException"\} 1$/m);
      expect(body).to.match(/^p11kms_request_duration_seconds_bucket\{le="[^"]+",dialect="aws-json",operation="Decrypt"\} [1-9]/m);
      expect(body).to.match(/^p11kms_token_call_duration_seconds_count\{function="C_Encrypt",outcome="ok"\} [1-9]/m);
      for (const name of ['p11kms_token_sessions{pool="operations"}', 'p11kms_token_sessions_in_use{pool="operations"}', 'p11kms_token_sessions_waiting{pool="operations"}', 'p11kms_audit_queue_depth', 'p11kms_token_shed_total']) {
        expect(metricSample(body, `${name} `), name).to.be.a('number');
      }
      expect(metricSample(body, 'p11kms_audit_fsync_duration_seconds_count ')).to.be.greaterThan(0);
      expect(body).to.match(/^p11kms_store_duration_seconds_count\{method="getKey"\} [1-9]/m);
      expect(body).to.match(/^p11kms_keys\{state="Enabled",spec="SYMMETRIC_DEFAULT"\} [1-9]/m);
      for (const secret of [keyId, alice.accessKeyId, alice.accountId, 'alice', bob.accessKeyId]) expect(body).to.not.include(secret);
    });

    it('/health answers live and /ready names every part it checked', async function () {
      const health = await get(`${server.endpoint}/health`, { ca: caPem });
      expect(health.status).to.equal(200);
      expect(JSON.parse(health.body).status).to.equal('ok');
      const ready = await get(`${server.endpoint}/ready`, { ca: caPem });
      expect(ready.status).to.equal(200);
      expect(JSON.parse(ready.body)).to.deep.equal({ status: 'ready', failing: [], checks: { token: 'ok', store: 'ok', audit: 'ok' } });
    });
  });

  it('warns when it serves plain HTTP on a non-loopback address', async function () {
    const server = await TestServer.start({ env: { P11KMS_HOST: '0.0.0.0' } });
    try {
      await server.waitForLog(/listening on a non-loopback address without TLS/);
    } finally {
      await server.kill();
    }
  });

  describe('mutual TLS', function () {
    let server: TestServer;
    let clientCa: TestCa;

    before(function () {
      clientCa = new TestCa(path.join(work, 'clients'), 'clients');
      fs.writeFileSync(path.join(work, 'mtls-credentials.json'), credentialsOf(alice));
    });
    serverPerSuite(
      () => ({
        auth: 'strict',
        credentialsFile: path.join(work, 'mtls-credentials.json'),
        env: { P11KMS_TLS_CERT: certFile, P11KMS_TLS_KEY: keyFile, P11KMS_TLS_CLIENT_CA: clientCa.cert },
      }),
      (started) => (server = started),
    );

    function clientWith(cert: { cert: string; key: string }): KMSClient {
      return server.client({ ...alice, tls: { ca: caPem, cert: fs.readFileSync(cert.cert), key: fs.readFileSync(cert.key) } });
    }

    it('accepts a client certificate issued by the client CA', async function () {
      const kms = clientWith(clientCa.client('billing-app', 'Example Corp'));
      const random = await kms.send(new GenerateRandomCommand({ NumberOfBytes: 16 }));
      expect(random.Plaintext).to.have.length(16);
    });

    it('gives key policies the verified subject (p11kms:TlsClientSubject, aws:SecureTransport) and records it in the audit trail', async function () {
      const billing = clientWith(clientCa.client('billing-app', 'Example Corp'));
      const reporting = clientWith(clientCa.client('reporting-app', 'Example Corp'));
      const policy = {
        Version: '2012-10-17',
        Statement: [
          { Sid: 'Account', Effect: 'Allow', Principal: { AWS: 'arn:aws:iam::111122223333:root' }, Action: 'kms:*', Resource: '*' },
          { Sid: 'OnlyBilling', Effect: 'Deny', Principal: { AWS: '*' }, Action: 'kms:Encrypt', Resource: '*', Condition: { StringNotEquals: { 'p11kms:TlsClientSubject': 'O=Example Corp,CN=billing-app' } } },
          { Sid: 'OnlyTls', Effect: 'Deny', Principal: { AWS: '*' }, Action: 'kms:Decrypt', Resource: '*', Condition: { Bool: { 'aws:SecureTransport': 'false' } } },
        ],
      };
      const keyId = (await billing.send(new CreateKeyCommand({ Policy: JSON.stringify(policy) }))).KeyMetadata!.KeyId!;
      const sealed = await billing.send(new EncryptCommand({ KeyId: keyId, Plaintext: Buffer.from('for billing') }));
      expect(Buffer.from((await billing.send(new DecryptCommand({ CiphertextBlob: sealed.CiphertextBlob }))).Plaintext!).toString()).to.equal('for billing');
      const denied = await expectKmsError(reporting.send(new EncryptCommand({ KeyId: keyId, Plaintext: Buffer.from('not for reporting') })));
      expect(denied.name).to.equal('AccessDeniedException');
      const auditDir = path.join(server.dataDir, 'audit');
      const records = fs
        .readdirSync(auditDir)
        .filter((f) => f.endsWith('.jsonl'))
        .flatMap((f) => fs.readFileSync(path.join(auditDir, f), 'utf8').split('\n').filter(Boolean))
        .map((l) => JSON.parse(l) as { eventName: string; errorCode?: string; additionalEventData?: Record<string, unknown> });
      const encrypts = records.filter((r) => r.eventName === 'Encrypt');
      expect(encrypts.map((r) => [r.errorCode ?? 'ok', r.additionalEventData?.tlsClientSubject])).to.deep.equal([
        ['ok', 'O=Example Corp,CN=billing-app'],
        ['AccessDeniedException', 'O=Example Corp,CN=reporting-app'],
      ]);
    });

    it('refuses a client without a certificate, and one from another CA, at the handshake', async function () {
      const none = await expectKmsError(server.client({ tls: { ca: caPem } }).send(new GenerateRandomCommand({ NumberOfBytes: 16 })));
      expect(none.$metadata?.httpStatusCode).to.equal(undefined);
      const rogueCa = new TestCa(path.join(work, 'rogue'), 'rogue');
      const rogue = rogueCa.client('intruder', 'Elsewhere');
      const foreign = await expectKmsError(
        server.client({ tls: { ca: caPem, cert: fs.readFileSync(rogue.cert), key: fs.readFileSync(rogue.key) } }).send(new GenerateRandomCommand({ NumberOfBytes: 16 })),
      );
      expect(foreign.$metadata?.httpStatusCode).to.equal(undefined);
      expect(`${none.message} ${foreign.message}`).to.match(/certificate|socket hang up|ECONNRESET|alert/i);
    });
  });

  describe('request quotas', function () {
    let server: TestServer;

    before(async function () {
      fs.writeFileSync(path.join(work, 'two-accounts.json'), credentialsOf(alice, bob));
      server = await TestServer.start({ auth: 'strict', credentialsFile: path.join(work, 'two-accounts.json'), env: { P11KMS_REQUEST_QUOTAS: 'symmetric=1,management=1' } });
    });

    after(async function () {
      await server?.kill();
    });

    it('answers ThrottlingException (400, AWS text) past the quota, per account and region', async function () {
      const kms = server.client(alice);
      const results = await Promise.allSettled(Array.from({ length: 8 }, () => kms.send(new GenerateRandomCommand({ NumberOfBytes: 8 }))));
      const throttled = results.filter((r) => r.status === 'rejected');
      expect(results.filter((r) => r.status === 'fulfilled').length).to.be.greaterThan(0);
      expect(throttled.length).to.be.greaterThan(0);
      for (const r of throttled) {
        const err = (r as PromiseRejectedResult).reason as { name: string; message: string; $metadata: { httpStatusCode: number } };
        expect([err.name, err.message, err.$metadata.httpStatusCode]).to.deep.equal(['ThrottlingException', THROTTLED, 400]);
      }
      // Another account's quota is its own; so is another class's.
      expect((await server.client(bob).send(new GenerateRandomCommand({ NumberOfBytes: 8 }))).Plaintext).to.have.length(8);
      expect((await kms.send(new ListKeysCommand({}))).Keys).to.be.an('array');
    });

    it('/ready answers 503 naming the part that fails', async function () {
      fs.rmSync(path.join(server.dataDir, 'audit'), { recursive: true, force: true });
      const ready = await get(`${server.endpoint}/ready`);
      expect(ready.status).to.equal(503);
      const body = JSON.parse(ready.body) as { failing: string[]; checks: Record<string, string> };
      expect(body.failing).to.deep.equal(['audit']);
      expect(body.checks.audit).to.match(/audit directory not writable \(ENOENT\)/);
      expect(body.checks.token).to.equal('ok');
    });
  });
});
