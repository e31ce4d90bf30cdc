import { execFile, execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { buildClient, CommitmentPolicy, getClient, KMS, KmsKeyringNode } from '@aws-crypto/client-node';
import { CreateKeyCommand, DescribeKeyCommand, ListKeysCommand } from '@aws-sdk/client-kms';
import { Hash } from '@smithy/hash-node';
import { SignatureV4 } from '@smithy/signature-v4';
import { expect } from 'chai';
import { pythonWithBoto3 } from '../support/python';
import { administrators, serverPerSuite, type TestServer } from '../support/server';
import { ALICE, SESSION } from '../support/sigv4-principals';

/**
 * Which headers a SigV4 signature must cover. The IAM User Guide (Create a signed AWS API
 * request): "You must include the host header … and any x-amz-* headers in the signature." A
 * request whose X-Amz-Target is not signed could otherwise be replayed, within the 5-minute
 * window, as another operation over the same body (p11kms ignores unknown JSON members).
 */

function writeCredentials(): string {
  const file = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'p11kms-signed-headers-')), 'credentials.json');
  fs.writeFileSync(file, JSON.stringify({ accessKeys: [ALICE, SESSION], identityPolicies: administrators(ALICE.principalArn, SESSION.principalArn) }));
  return file;
}

interface Sent {
  headers: Record<string, string>;
  query: Record<string, string>;
}

interface SignOptions {
  credentials?: { accessKeyId: string; secretAccessKey: string; sessionToken?: string };
  /** Headers the AWS SDK signer leaves out of the signature. */
  unsigned?: string[];
  presign?: boolean;
}

/** `POST /` with `operation` and `body`, signed by the AWS SDK's own SigV4 signer (or presigned). */
async function signedRequest(endpoint: string, operation: string, body: string, options: SignOptions = {}): Promise<Sent> {
  const url = new URL(endpoint);
  const signer = new SignatureV4({ credentials: options.credentials ?? ALICE, region: 'us-east-1', service: 'kms', sha256: Hash.bind(null, 'sha256') });
  const request = {
    method: 'POST',
    protocol: 'http:',
    hostname: url.hostname,
    port: Number(url.port),
    path: '/',
    query: {},
    headers: { host: url.host, 'content-type': 'application/x-amz-json-1.1', 'x-amz-target': `TrentService.${operation}` },
    body,
  };
  const unsignableHeaders = new Set(options.unsigned ?? []);
  const signed = options.presign ? await signer.presign(request, { expiresIn: 300, unsignableHeaders }) : await signer.sign(request, { unsignableHeaders });
  const { host: _, ...headers } = signed.headers as Record<string, string>;
  return { headers, query: (signed.query ?? {}) as Record<string, string> };
}

async function send(endpoint: string, sent: Sent, body: string) {
  const query = new URLSearchParams(sent.query).toString();
  const res = await fetch(`${endpoint}/${query ? `?${query}` : ''}`, { method: 'POST', headers: sent.headers, body });
  return { status: res.status, json: (await res.json()) as Record<string, unknown> };
}

const mustBeSigned = (header: string) => ({ __type: 'InvalidSignatureException', message: `'${header}' must be a 'SignedHeader' in the AWS Authorization.` });

describe('SigV4: x-amz-* headers must be signed (strict mode)', function () {
  let server: TestServer;
  serverPerSuite(() => ({ auth: 'strict', credentialsFile: writeCredentials() }), (started) => (server = started));

  it('an unsigned X-Amz-Target is refused, so a captured DescribeKey cannot be replayed as DisableKey', async () => {
    const kms = server.client(ALICE);
    const { KeyMetadata } = await kms.send(new CreateKeyCommand({}));
    const body = JSON.stringify({ KeyId: KeyMetadata!.KeyId });
    const captured = await signedRequest(server.endpoint, 'DescribeKey', body, { unsigned: ['x-amz-target'] });
    expect(captured.headers.authorization).to.not.include('x-amz-target');

    const replayed = await send(server.endpoint, { ...captured, headers: { ...captured.headers, 'x-amz-target': 'TrentService.DisableKey' } }, body);
    expect(replayed.status).to.equal(400);
    expect(replayed.json).to.deep.equal(mustBeSigned('x-amz-target'));
    const asSent = await send(server.endpoint, captured, body);
    expect(asSent.json).to.deep.equal(mustBeSigned('x-amz-target'));

    const after = await kms.send(new DescribeKeyCommand({ KeyId: KeyMetadata!.KeyId }));
    expect(after.KeyMetadata!.Enabled, 'the key was not disabled').to.equal(true);
  });

  it('any other unsigned x-amz-* header is refused too (X-Amz-Date, X-Amz-Content-Sha256)', async () => {
    const unsignedDate = await signedRequest(server.endpoint, 'ListKeys', '{}', { unsigned: ['x-amz-date'] });
    const res = await send(server.endpoint, unsignedDate, '{}');
    expect(res.status).to.equal(400);
    expect(res.json).to.deep.equal(mustBeSigned('x-amz-date'));

    // The signer sends the body's hash in X-Amz-Content-Sha256; here it leaves it unsigned.
    const unsignedHash = await signedRequest(server.endpoint, 'ListKeys', '{}', { unsigned: ['x-amz-content-sha256'] });
    expect(unsignedHash.headers['x-amz-content-sha256']).to.match(/^[0-9a-f]{64}$/);
    expect((await send(server.endpoint, unsignedHash, '{}')).json).to.deep.equal(mustBeSigned('x-amz-content-sha256'));
  });

  it('X-Amz-Security-Token may be added after signing, as the IAM guide allows; X-Amzn-Trace-Id is not an x-amz-* header', async () => {
    const signed = await signedRequest(server.endpoint, 'ListKeys', '{}', { credentials: { accessKeyId: SESSION.accessKeyId, secretAccessKey: SESSION.secretAccessKey } });
    const withToken = { ...signed, headers: { ...signed.headers, 'x-amz-security-token': SESSION.sessionToken, 'x-amzn-trace-id': 'Root=1-5759e988-bd862e3fe1be46a994272793' } };
    const res = await send(server.endpoint, withToken, '{}');
    expect(res.status, JSON.stringify(res.json)).to.equal(200);
  });

  it('presigned: the SDK hoists X-Amz-Target into the signed query; an unsigned X-Amz-Target header next to it is refused', async () => {
    const presigned = await signedRequest(server.endpoint, 'ListKeys', '{}', { presign: true });
    expect(presigned.query['x-amz-target'] ?? presigned.query['X-Amz-Target']).to.equal('TrentService.ListKeys');
    const ok = await send(server.endpoint, presigned, '{}');
    expect(ok.status).to.equal(200);
    expect(ok.json).to.have.property('Keys');

    const keysBefore = (await server.client(ALICE).send(new ListKeysCommand({}))).Keys!.length;
    const retargeted = await send(server.endpoint, { ...presigned, headers: { ...presigned.headers, 'x-amz-target': 'TrentService.CreateKey' } }, '{}');
    expect(retargeted.status).to.equal(400);
    expect(retargeted.json).to.deep.equal(mustBeSigned('x-amz-target'));
    expect((await server.client(ALICE).send(new ListKeysCommand({}))).Keys!.length, 'no key was created').to.equal(keysBefore);
  });

  describe('real clients sign every x-amz-* header they send, with a long-term key and with temporary credentials', function () {
    this.timeout(60_000);
    const identities = [ALICE, SESSION];
    /** A plain process environment: only these credentials, no profile or config of the machine. */
    const envFor = (who: { accessKeyId: string; secretAccessKey: string; sessionToken?: string }) => ({
      PATH: process.env.PATH,
      HOME: server.dataDir,
      AWS_ACCESS_KEY_ID: who.accessKeyId,
      AWS_SECRET_ACCESS_KEY: who.secretAccessKey,
      ...(who.sessionToken ? { AWS_SESSION_TOKEN: who.sessionToken } : {}),
      AWS_DEFAULT_REGION: 'us-east-1',
      AWS_CONFIG_FILE: '/dev/null',
      AWS_SHARED_CREDENTIALS_FILE: '/dev/null',
      AWS_EC2_METADATA_DISABLED: 'true',
    });
    const run = (file: string, args: string[], env: NodeJS.ProcessEnv) =>
      new Promise<string>((resolve, reject) => execFile(file, args, { env, timeout: 30_000 }, (err, stdout, stderr) => (err ? reject(new Error(`${err.message}\n${stderr}`)) : resolve(stdout))));

    it('AWS SDK v3', async () => {
      for (const who of identities) await server.client(who).send(new ListKeysCommand({}));
    });

    it('the AWS Encryption SDK for JavaScript', async () => {
      const { encrypt, decrypt } = buildClient(CommitmentPolicy.REQUIRE_ENCRYPT_REQUIRE_DECRYPT);
      const { KeyMetadata } = await server.client(ALICE).send(new CreateKeyCommand({}));
      for (const who of identities) {
        const clientProvider = getClient(KMS, { endpoint: server.endpoint, credentials: who, maxAttempts: 1 });
        const keyring = new KmsKeyringNode({ generatorKeyId: KeyMetadata!.Arn!, clientProvider });
        const { result } = await encrypt(keyring, Buffer.from('signed headers'), { encryptionContext: { who: who.accessKeyId } });
        expect((await decrypt(keyring, result)).plaintext.toString()).to.equal('signed headers');
      }
    });

    it('boto3', async function () {
      const python = pythonWithBoto3();
      if (!python) this.skip();
      const script = "import boto3, json, sys; c = boto3.client('kms', endpoint_url=sys.argv[1]); print(json.dumps(len(c.list_keys()['Keys'])))";
      for (const who of identities) expect(Number(await run(python!, ['-c', script, server.endpoint], envFor(who)))).to.be.at.least(1);
    });

    it('the aws CLI', async function () {
      try {
        execFileSync('aws', ['--version'], { stdio: 'ignore' });
      } catch {
        this.skip();
      }
      for (const who of identities) {
        const out = JSON.parse(await run('aws', ['kms', 'list-keys', '--endpoint-url', server.endpoint, '--output', 'json'], envFor(who))) as { Keys: unknown[] };
        expect(out.Keys.length).to.be.at.least(1);
      }
    });
  });
});
