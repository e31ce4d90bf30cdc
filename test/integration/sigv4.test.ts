import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { CreateKeyCommand, DescribeKeyCommand, EncryptCommand, ListKeysCommand } from '@aws-sdk/client-kms';
import { Hash } from '@smithy/hash-node';
import { SignatureV4 } from '@smithy/signature-v4';
import { expect } from 'chai';
import { administrators, expectKmsError, serverPerSuite, type TestServer } from '../support/server';
import { ALICE, BOB, SESSION } from '../support/sigv4-principals';

const INVALID_TOKEN = 'The security token included in the request is invalid.';

function writeCredentials(): string {
  const file = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'p11kms-creds-')), 'credentials.json');
  fs.writeFileSync(file, JSON.stringify({ accessKeys: [ALICE, BOB, SESSION], identityPolicies: administrators(ALICE.principalArn, BOB.principalArn, SESSION.principalArn) }));
  return file;
}

interface RawOptions {
  credentials?: { accessKeyId: string; secretAccessKey: string; sessionToken?: string };
  region?: string;
  service?: string;
  signingDate?: Date;
  /** Changes the request after it was signed. */
  tamper?: (req: { headers: Record<string, string>; body: string }) => void;
  presign?: boolean;
  /** Extra headers included in the signature. */
  headers?: Record<string, string>;
}

/** Sends a TrentService request signed by the AWS SDK's own SigV4 signer. */
async function rawCall(endpoint: string, operation: string, body: unknown, options: RawOptions = {}) {
  const url = new URL(endpoint);
  const payload = JSON.stringify(body);
  const signer = new SignatureV4({
    credentials: options.credentials ?? ALICE,
    region: options.region ?? 'us-east-1',
    service: options.service ?? 'kms',
    sha256: Hash.bind(null, 'sha256'),
  });
  const request = {
    method: 'POST',
    protocol: 'http:',
    hostname: url.hostname,
    port: Number(url.port),
    path: '/',
    query: {} as Record<string, string>,
    headers: {
      host: url.host,
      'content-type': 'application/x-amz-json-1.1',
      'x-amz-target': `TrentService.${operation}`,
      ...options.headers,
    } as Record<string, string>,
    body: payload,
  };
  const signed = options.presign
    ? await signer.presign(request, { signingDate: options.signingDate, expiresIn: 300 })
    : await signer.sign(request, { signingDate: options.signingDate });
  const sent = { headers: { ...(signed.headers as Record<string, string>) }, body: payload };
  options.tamper?.(sent);
  delete sent.headers.host;
  const query = new URLSearchParams(signed.query as Record<string, string>).toString();
  const res = await fetch(`${endpoint}/${query ? `?${query}` : ''}`, { method: 'POST', headers: sent.headers, body: sent.body });
  return { status: res.status, json: (await res.json()) as Record<string, unknown> };
}

/**
 * Sends ListKeys with the headers given, all of them signed, the canonical request written out
 * by hand (nothing but POST / with these headers) and its string to sign signed by the AWS
 * SDK's signer: for the date headers the SDK's own request signing always replaces.
 */
async function handSigned(endpoint: string, headers: Record<string, string>, signingDate: Date) {
  const url = new URL(endpoint);
  const body = '{}';
  const all: Record<string, string> = { host: url.host, 'content-type': 'application/x-amz-json-1.1', 'x-amz-target': 'TrentService.ListKeys', ...headers };
  const names = Object.keys(all).sort();
  const hex = (s: string) => createHash('sha256').update(s).digest('hex');
  const canonical = ['POST', '/', '', ...names.map((n) => `${n}:${all[n]}`), '', names.join(';'), hex(body)].join('\n');
  const longDate = isoBasic(signingDate);
  const scope = `${longDate.slice(0, 8)}/us-east-1/kms/aws4_request`;
  const signer = new SignatureV4({ credentials: ALICE, region: 'us-east-1', service: 'kms', sha256: Hash.bind(null, 'sha256') });
  const signature = await signer.sign(`AWS4-HMAC-SHA256\n${longDate}\n${scope}\n${hex(canonical)}`, { signingDate });
  const { host: _, ...sent } = all;
  const res = await fetch(`${endpoint}/`, {
    method: 'POST',
    headers: { ...sent, authorization: `AWS4-HMAC-SHA256 Credential=${ALICE.accessKeyId}/${scope}, SignedHeaders=${names.join(';')}, Signature=${signature}` },
    body,
  });
  return { status: res.status, json: (await res.json()) as Record<string, unknown> };
}

/** 20261201T203000Z → 2026-12-01T20:30:00Z */
function isoBasic(date: Date): string {
  return date.toISOString().replace(/[-:]/g, '').replace(/\.\d{3}/, '');
}

function isoOf(amzDate: string): string {
  return amzDate.replace(/^(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})Z$/, '$1-$2-$3T$4:$5:$6Z');
}

describe('SigV4 authentication (strict mode)', function () {
  let server: TestServer;

  serverPerSuite(() => ({ auth: 'strict', credentialsFile: writeCredentials() }), (started) => (server = started));

  it('accepts requests signed by the AWS SDK with a known access key, in that key’s account', async () => {
    const kms = server.client(ALICE);
    const { KeyMetadata } = await kms.send(new CreateKeyCommand({}));
    expect(KeyMetadata!.AWSAccountId).to.equal(ALICE.accountId);
    expect(KeyMetadata!.Arn).to.equal(`arn:aws:kms:us-east-1:${ALICE.accountId}:key/${KeyMetadata!.KeyId}`);
  });

  it('rejects a wrong secret with InvalidSignatureException', async () => {
    const err = await expectKmsError(server.client({ ...ALICE, secretAccessKey: 'wrong' }).send(new ListKeysCommand({})));
    expect(err.name).to.equal('InvalidSignatureException');
    expect(err.message).to.match(/signature we calculated does not match/);
  });

  it('rejects an unknown access key with UnrecognizedClientException', async () => {
    const err = await expectKmsError(server.client({ accessKeyId: 'AKIAUNKNOWN', secretAccessKey: 'x' }).send(new ListKeysCommand({})));
    expect(err.name).to.equal('UnrecognizedClientException');
  });

  it('rejects a body altered after signing', async () => {
    const res = await rawCall(server.endpoint, 'GenerateRandom', { NumberOfBytes: 8 }, {
      tamper: (req) => {
        req.body = JSON.stringify({ NumberOfBytes: 9 });
      },
    });
    expect(res.status).to.equal(400);
    expect(res.json.__type).to.equal('InvalidSignatureException');
  });

  it('rejects a signed x-amz-content-sha256 header that does not match the body', async () => {
    // The signer takes this header as the payload hash; the service must check it against the body.
    const signedBody = JSON.stringify({ NumberOfBytes: 8 });
    const hash = createHash('sha256').update(signedBody).digest('hex');
    const ok = await rawCall(server.endpoint, 'GenerateRandom', { NumberOfBytes: 8 }, { headers: { 'x-amz-content-sha256': hash } });
    expect(ok.status, 'control: matching hash').to.equal(200);
    const res = await rawCall(server.endpoint, 'GenerateRandom', { NumberOfBytes: 8 }, {
      headers: { 'x-amz-content-sha256': hash },
      tamper: (req) => {
        req.body = JSON.stringify({ NumberOfBytes: 16 });
      },
    });
    expect(res.json.__type).to.equal('InvalidSignatureException');
  });

  it('rejects a signed header changed after signing', async () => {
    const res = await rawCall(server.endpoint, 'GenerateRandom', { NumberOfBytes: 8 }, {
      tamper: (req) => {
        req.headers['x-amz-target'] = 'TrentService.ListKeys';
      },
    });
    expect(res.json.__type).to.equal('InvalidSignatureException');
  });

  it('rejects SignedHeaders naming Object.prototype members the request does not have (not a 500)', async () => {
    for (const name of ['constructor', '__proto__']) {
      const res = await rawCall(server.endpoint, 'GenerateRandom', { NumberOfBytes: 8 }, {
        tamper: (req) => {
          const key = Object.keys(req.headers).find((h) => h.toLowerCase() === 'authorization')!;
          req.headers[key] = req.headers[key].replace('SignedHeaders=', `SignedHeaders=${name};`);
        },
      });
      expect(res.status, `${name}: ${JSON.stringify(res.json)}`).to.equal(400);
      expect(res.json.__type).to.equal('InvalidSignatureException');
    }
  });

  it('accepts a correctly signed raw request (control for the tamper tests)', async () => {
    const res = await rawCall(server.endpoint, 'GenerateRandom', { NumberOfBytes: 8 });
    expect(res.status).to.equal(200);
    expect(Buffer.from(res.json.Plaintext as string, 'base64')).to.have.length(8);
  });

  it('rejects a signature more than 5 minutes old or ahead, in AWS’s words', async () => {
    // AWS: a request must reach it within five minutes of its time stamp (IAM User Guide,
    // "Signing AWS API requests"); KMS's answer as seen by @aws-sdk/client-kms (aws-sdk-js-v3#6400).
    const stamp = '(\\d{8}T\\d{6}Z)';
    const old = await expectKmsError(server.client({ ...ALICE, clockOffsetMs: -6 * 60_000 }).send(new ListKeysCommand({})));
    expect(old.name).to.equal('InvalidSignatureException');
    const expired = new RegExp(`^Signature expired: ${stamp} is now earlier than ${stamp} \\(${stamp} - 5 min\\.\\)$`).exec(old.message);
    expect(expired, old.message).to.not.equal(null);
    const [, signed, earliest, now] = expired!;
    expect(Date.parse(isoOf(now)) - Date.parse(isoOf(earliest))).to.equal(5 * 60_000);
    expect(Date.parse(isoOf(signed))).to.be.below(Date.parse(isoOf(earliest)));
    const ahead = await expectKmsError(server.client({ ...ALICE, clockOffsetMs: 6 * 60_000 }).send(new ListKeysCommand({})));
    expect(ahead.name).to.equal('InvalidSignatureException');
    expect(ahead.message).to.match(new RegExp(`^Signature not yet current: ${stamp} is still later than ${stamp} \\(${stamp} \\+ 5 min\\.\\)$`));
  });

  it('accepts a signature a few minutes off either way', async () => {
    for (const offsetMs of [-4 * 60_000, 4 * 60_000]) {
      const res = await rawCall(server.endpoint, 'ListKeys', {}, { signingDate: new Date(Date.now() + offsetMs) });
      expect(res.status, `offset ${offsetMs}`).to.equal(200);
    }
  });

  it('temporary credentials: accepted with their session token, refused without it or with another (UnrecognizedClientException)', async () => {
    const ok = await server.client(SESSION).send(new ListKeysCommand({}));
    expect(ok.Keys).to.be.an('array');
    for (const sessionToken of [undefined, 'another-token', `${SESSION.sessionToken}x`]) {
      const { sessionToken: _, ...withoutToken } = SESSION;
      const err = await expectKmsError(server.client({ ...withoutToken, ...(sessionToken ? { sessionToken } : {}) }).send(new ListKeysCommand({})));
      expect(err.name, `token ${sessionToken}`).to.equal('UnrecognizedClientException');
      expect(err.message).to.equal(INVALID_TOKEN);
      expect(err.$metadata?.httpStatusCode).to.equal(400);
    }
    const presigned = await rawCall(server.endpoint, 'ListKeys', {}, { presign: true, credentials: SESSION });
    expect(presigned.status, 'presigned with the token').to.equal(200);
  });

  it('a long-term access key with a session token is refused, as AWS refuses a stale AWS_SESSION_TOKEN', async () => {
    const err = await expectKmsError(server.client({ ...ALICE, sessionToken: 'left-over-token' }).send(new ListKeysCommand({})));
    expect(err.name).to.equal('UnrecognizedClientException');
    expect(err.message).to.equal(INVALID_TOKEN);
    const presigned = await rawCall(server.endpoint, 'ListKeys', {}, { presign: true, credentials: { ...ALICE, sessionToken: 'left-over-token' } });
    expect(presigned.json).to.deep.equal({ __type: 'UnrecognizedClientException', message: INVALID_TOKEN });
  });

  it('the hand-signed control: X-Amz-Date signed as the SDK signs it is accepted', async () => {
    const now = new Date();
    const res = await handSigned(server.endpoint, { 'x-amz-date': isoBasic(now) }, now);
    expect(res.status, JSON.stringify(res.json)).to.equal(200);
  });

  it('a Date header stands for X-Amz-Date (ISO 8601 basic as the KMS API Reference allows, or the HTTP form of the SigV4 test suite)', async () => {
    const now = new Date();
    for (const date of [isoBasic(now), now.toUTCString()]) {
      const res = await handSigned(server.endpoint, { date }, now);
      expect(res.status, `${date}: ${JSON.stringify(res.json)}`).to.equal(200);
    }
    const stale = new Date(Date.now() - 6 * 60_000);
    const old = await handSigned(server.endpoint, { date: stale.toUTCString() }, stale);
    expect(old.json.__type, 'the Date header’s time is checked like X-Amz-Date').to.equal('InvalidSignatureException');
    expect(old.json.message).to.match(new RegExp(`^Signature expired: ${isoBasic(stale)} is now earlier than`));
    const nonsense = await handSigned(server.endpoint, { date: 'yesterday' }, now);
    expect(nonsense.json).to.deep.equal({ __type: 'IncompleteSignatureException', message: "Date must be in ISO-8601 'basic format'. Got 'yesterday'. See http://en.wikipedia.org/wiki/ISO_8601" });
  });

  it('a signed Date header next to X-Amz-Date is part of the signature as sent; X-Amz-Date is the signing date', async () => {
    const now = new Date();
    const res = await handSigned(server.endpoint, { 'x-amz-date': isoBasic(now), date: new Date(Date.now() - 3_600_000).toUTCString() }, now);
    expect(res.status, JSON.stringify(res.json)).to.equal(200);
  });

  it('answers an unsigned request with 403 MissingAuthenticationTokenException', async () => {
    const res = await fetch(`${server.endpoint}/`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-amz-json-1.1', 'x-amz-target': 'TrentService.ListKeys' },
      body: '{}',
    });
    expect(res.status).to.equal(403);
    expect(((await res.json()) as { __type: string }).__type).to.equal('MissingAuthenticationTokenException');
  });

  it('answers an Authorization header without a Signature with IncompleteSignatureException', async () => {
    const res = await rawCall(server.endpoint, 'ListKeys', {}, {
      tamper: (req) => {
        req.headers.authorization = req.headers.authorization.replace(/, Signature=[0-9a-f]+/, '');
      },
    });
    expect(res.json.__type).to.equal('IncompleteSignatureException');
    expect(res.json.message).to.match(/requires 'Signature'/);
  });

  it('rejects a credential scoped to another service', async () => {
    const res = await rawCall(server.endpoint, 'ListKeys', {}, { service: 's3' });
    expect(res.json.__type).to.equal('InvalidSignatureException');
    expect(res.json.message).to.match(/scoped to correct service/);
  });

  it('accepts the presigned query-string form and rejects it when tampered', async () => {
    const ok = await rawCall(server.endpoint, 'ListKeys', {}, { presign: true });
    expect(ok.status).to.equal(200);
    const bad = await rawCall(server.endpoint, 'ListKeys', {}, {
      presign: true,
      tamper: (req) => {
        req.body = JSON.stringify({ Limit: 1 });
      },
    });
    expect(bad.json.__type).to.equal('InvalidSignatureException');
  });

  it('uses the region of the credential scope', async () => {
    const west = server.client({ ...ALICE, region: 'us-west-2' });
    const { KeyMetadata } = await west.send(new CreateKeyCommand({}));
    expect(KeyMetadata!.Arn).to.contain(':us-west-2:');
    const east = server.client({ ...ALICE, region: 'eu-west-1' });
    const err = await expectKmsError(east.send(new DescribeKeyCommand({ KeyId: KeyMetadata!.KeyId })));
    expect(err.name).to.equal('NotFoundException');
  });

  it('keeps accounts apart: another account sees none of the keys and is denied by key ARN', async () => {
    const alice = server.client(ALICE);
    const bob = server.client(BOB);
    const { KeyMetadata } = await alice.send(new CreateKeyCommand({}));
    const bobKeys = await bob.send(new ListKeysCommand({}));
    expect((bobKeys.Keys ?? []).map((k) => k.KeyId)).not.to.include(KeyMetadata!.KeyId);
    const byId = await expectKmsError(bob.send(new DescribeKeyCommand({ KeyId: KeyMetadata!.KeyId })));
    expect(byId.name).to.equal('NotFoundException');
    const byArn = await expectKmsError(bob.send(new EncryptCommand({ KeyId: KeyMetadata!.Arn, Plaintext: Buffer.from('x') })));
    expect(byArn.name).to.equal('AccessDeniedException');
    expect(byArn.message).to.equal(
      `User: ${BOB.principalArn} is not authorized to perform: kms:Encrypt on resource: ${KeyMetadata!.Arn} because no resource-based policy allows the kms:Encrypt action`,
    );
  });
});

describe('SigV4 authentication (permissive mode)', function () {
  let server: TestServer;

  serverPerSuite(() => ({ auth: 'permissive', credentialsFile: writeCredentials(), accountId: '777788889999' }), (started) => (server = started));

  it('accepts any well-formed credentials and maps them to the default account', async () => {
    const { KeyMetadata } = await server.client({ accessKeyId: 'ANYTHING', secretAccessKey: 'whatever' }).send(new CreateKeyCommand({}));
    expect(KeyMetadata!.AWSAccountId).to.equal('777788889999');
  });

  it('still verifies access keys that are in the credentials file', async () => {
    const ok = await server.client(BOB).send(new CreateKeyCommand({}));
    expect(ok.KeyMetadata!.AWSAccountId).to.equal(BOB.accountId);
    const err = await expectKmsError(server.client({ ...BOB, secretAccessKey: 'wrong' }).send(new ListKeysCommand({})));
    expect(err.name).to.equal('InvalidSignatureException');
  });

  it('still requires a signature', async () => {
    const res = await fetch(`${server.endpoint}/`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-amz-json-1.1', 'x-amz-target': 'TrentService.ListKeys' },
      body: '{}',
    });
    expect(res.status).to.equal(403);
  });
});
