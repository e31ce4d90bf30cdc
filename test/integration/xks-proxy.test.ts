/**
 * p11kms as an XKS proxy: the XKS Proxy API v1 on its own HTTPS listener (test CA made at
 * test time), requests signed by the AWS SDK's own SigV4 signer for service kms-xks-proxy,
 * AES-256-GCM in the token. The external key is made by the CLI while the service runs.
 */
import * as fs from 'node:fs';
import * as https from 'node:https';
import * as os from 'node:os';
import * as path from 'node:path';
import { Hash } from '@smithy/hash-node';
import { SignatureV4 } from '@smithy/signature-v4';
import { expect } from 'chai';
import { serverPerSuite, type TestServer } from '../support/server';
import { makeTestPki, type TestPki } from '../support/xks';import { listTokenObjects } from '../support/token-tool';
import { createExternalKey, writeXksSettings, XKS_CREDENTIAL } from '../support/xks';
import { integrityValue } from '../../src/wire/xks/spec';

const PREFIX = '/tenant-a';
const META = { awsPrincipalArn: 'arn:aws:iam::111122223333:user/alice', kmsOperation: 'Encrypt', kmsRequestId: '4112f4d6-db54-4af4-ae30-c55a22a8dfae', kmsKeyArn: 'arn:aws:kms:us-east-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab' };

describe('XKS proxy listener (p11kms serving the XKS Proxy API v1)', function () {
  this.timeout(60_000);
  let server: TestServer;
  let pki: TestPki;

  /** `extraSignedHeader`: a name added to SignedHeaders after signing (the request does not carry it). */
  const call = async (apiPath: string, body: unknown, options: { secret?: string; method?: string; prefix?: string; extraSignedHeader?: string } = {}) => {
    const url = new URL(`${server.xksEndpoint}${options.prefix ?? PREFIX}/kms/xks/v1${apiPath}`);
    const payload = body === undefined ? '' : JSON.stringify(body);
    const signer = new SignatureV4({
      credentials: { accessKeyId: XKS_CREDENTIAL.accessKeyId, secretAccessKey: options.secret ?? XKS_CREDENTIAL.secretAccessKey },
      region: 'us-east-1',
      service: 'kms-xks-proxy',
      sha256: Hash.bind(null, 'sha256'),
    });
    const signed = await signer.sign({ method: options.method ?? 'POST', protocol: 'https:', hostname: url.hostname, port: Number(url.port), path: url.pathname, headers: { host: url.host, 'content-type': 'application/json' }, body: payload });
    if (options.extraSignedHeader) signed.headers.authorization = signed.headers.authorization.replace('SignedHeaders=', `SignedHeaders=${options.extraSignedHeader};`);
    return new Promise<{ status: number; json: Record<string, unknown> }>((resolve, reject) => {
      const req = https.request({ method: signed.method, host: url.hostname, port: url.port, path: url.pathname, headers: signed.headers, ca: fs.readFileSync(pki.caFile), servername: 'localhost' }, (res) => {
        let text = '';
        res.on('data', (d: Buffer) => (text += d.toString()));
        res.on('end', () => resolve({ status: res.statusCode!, json: text ? (JSON.parse(text) as Record<string, unknown>) : {} }));
      });
      req.on('error', reject);
      req.end(payload);
    });
  };

  serverPerSuite(() => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'p11kms-xks-'));
    pki = makeTestPki(dir);
    return { env: { P11KMS_XKS_PROXY_FILE: writeXksSettings(dir, pki) } };
  }, (started) => (server = started));
  before(() => {
    expect(server.xksEndpoint).to.match(/^https:\/\/127\.0\.0\.1:\d+$/);
    expect(createExternalKey(server.dataDir, 'key-1')).to.include('created external key key-1');
  });

  it('keeps the external key in the token, sensitive and never extractable', () => {
    const object = listTokenObjects(server.dataDir).find((o) => o.label === 'p11kms-xks:key-1');
    expect(object).to.include({ sensitive: true, extractable: false, neverExtractable: true });
    expect(createExternalKey(server.dataDir, 'key-2')).to.include('created');
  });

  it('answers health and metadata as the spec says', async () => {
    const health = await call('/health', { requestMetadata: { kmsRequestId: 'health-1', kmsOperation: 'KmsHealthCheck' } });
    expect(health.status).to.equal(200);
    expect(health.json).to.include({ xksProxyFleetSize: 1, xksProxyVendor: 'p11kms' });
    expect((health.json.ekmFleetDetails as Array<Record<string, string>>)[0]).to.include({ id: 'p11kms', healthStatus: 'ACTIVE' });
    const metadata = await call('/keys/key-1/metadata', { requestMetadata: { ...META, kmsOperation: 'CreateKey' } });
    expect(metadata.status).to.equal(200);
    expect(metadata.json).to.deep.equal({ keySpec: 'AES_256', keyUsage: ['ENCRYPT', 'DECRYPT'], keyStatus: 'ENABLED' });
  });

  it('encrypts and decrypts in the token with AAD, ciphertext metadata and the integrity value', async () => {
    const plaintext = Buffer.alloc(4300, 7);
    const aad = Buffer.alloc(8192, 9);
    const enc = await call('/keys/key-1/encrypt', { requestMetadata: META, plaintext: plaintext.toString('base64'), encryptionAlgorithm: 'AES_GCM', additionalAuthenticatedData: aad.toString('base64'), ciphertextDataIntegrityValueAlgorithm: 'SHA_256' });
    expect(enc.status).to.equal(200);
    const bytes = (k: string) => Buffer.from(enc.json[k] as string, 'base64');
    expect(bytes('ciphertext')).to.have.length(plaintext.length);
    expect(bytes('initializationVector')).to.have.length(12);
    expect(bytes('authenticationTag')).to.have.length(16);
    expect(enc.json.ciphertextDataIntegrityValue).to.equal(integrityValue({ aad, ciphertextMetadata: bytes('ciphertextMetadata'), iv: bytes('initializationVector'), ciphertext: bytes('ciphertext'), tag: bytes('authenticationTag') }));
    const request = { requestMetadata: { ...META, kmsOperation: 'Decrypt' }, encryptionAlgorithm: 'AES_GCM', ciphertext: enc.json.ciphertext, initializationVector: enc.json.initializationVector, authenticationTag: enc.json.authenticationTag, ciphertextMetadata: enc.json.ciphertextMetadata, additionalAuthenticatedData: aad.toString('base64') };
    const dec = await call('/keys/key-1/decrypt', request);
    expect(dec.status).to.equal(200);
    expect(Buffer.from(dec.json.plaintext as string, 'base64').equals(plaintext)).to.equal(true);

    // Tampering anywhere fails the tag check in the token; another key cannot decrypt.
    for (const [label, change] of [
      ['AAD', { additionalAuthenticatedData: Buffer.from('other').toString('base64') }],
      ['no AAD', { additionalAuthenticatedData: undefined }],
      ['ciphertext metadata', { ciphertextMetadata: Buffer.from([2]).toString('base64') }],
    ] as const) {
      const bad = await call('/keys/key-1/decrypt', { ...request, ...change });
      expect(bad, label).to.deep.include({ status: 400 });
      expect(bad.json.errorName, label).to.equal('InvalidCiphertextException');
    }
    expect((await call('/keys/key-2/decrypt', request)).json.errorName).to.equal('InvalidCiphertextException');
  });

  it("answers the spec's errors with the spec's statuses", async () => {
    const cases: Array<[string, Promise<{ status: number; json: Record<string, unknown> }>, number, string]> = [
      ['unknown key', call('/keys/nope/metadata', { requestMetadata: META }), 404, 'KeyNotFoundException'],
      ['wrong secret', call('/keys/key-1/metadata', { requestMetadata: META }, { secret: 'c2VjcmV0LXRoYXQtaXMtbm90LXRoZS1yaWdodC1vbmUtYXQtYWxsLTEyMw==' }), 401, 'AuthenticationFailedException'],
      ['unknown prefix', call('/keys/key-1/metadata', { requestMetadata: META }, { prefix: '/tenant-b' }), 404, 'InvalidUriPathException'],
      ['no requestMetadata', call('/keys/key-1/metadata', {}), 400, 'ValidationException'],
      ['no plaintext', call('/keys/key-1/encrypt', { requestMetadata: META, encryptionAlgorithm: 'AES_GCM' }), 400, 'ValidationException'],
      ['bad algorithm', call('/keys/key-1/encrypt', { requestMetadata: META, encryptionAlgorithm: 'AES_CBC', plaintext: 'AAAA' }), 400, 'ValidationException'],
      // Never a 500 for a bad request: empty plaintext is invalid input; AAD beyond the 16-bit
      // length of the spec's AAD construction is a size this proxy does not support (spec: 501).
      ['empty plaintext', call('/keys/key-1/encrypt', { requestMetadata: META, encryptionAlgorithm: 'AES_GCM', plaintext: '' }), 400, 'ValidationException'],
      ['64 KiB AAD', call('/keys/key-1/encrypt', { requestMetadata: META, encryptionAlgorithm: 'AES_GCM', plaintext: 'AAAA', additionalAuthenticatedData: Buffer.alloc(65536).toString('base64') }), 501, 'UnsupportedOperationException'],
      ['GET', call('/keys/key-1/metadata', undefined, { method: 'GET' }), 405, 'ValidationException'],
      // Signed header names are looked up among the request's own headers (not Object.prototype's).
      ['signed header constructor', call('/keys/key-1/metadata', { requestMetadata: META }, { extraSignedHeader: 'constructor' }), 401, 'AuthenticationFailedException'],
    ];
    for (const [label, pending, status, errorName] of cases) {
      const answer = await pending;
      expect(answer.status, label).to.equal(status);
      expect(answer.json.errorName, label).to.equal(errorName);
    }
  });

  it('records every call with kmsRequestId and awsPrincipalArn, never the data', async () => {
    const auditDir = path.join(server.dataDir, 'audit');
    const records = fs
      .readdirSync(auditDir)
      .filter((f) => f.endsWith('.jsonl'))
      .flatMap((f) => fs.readFileSync(path.join(auditDir, f), 'utf8').split('\n').filter(Boolean))
      .map((l) => JSON.parse(l) as { eventName: string; requestParameters?: Record<string, string>; errorCode?: string });
    const encrypt = records.find((r) => r.eventName === 'XksEncrypt')!;
    expect(encrypt.requestParameters).to.include({ kmsRequestId: META.kmsRequestId, awsPrincipalArn: META.awsPrincipalArn, externalKeyId: 'key-1', kmsOperation: 'Encrypt' });
    expect(records.filter((r) => r.eventName === 'XksDecrypt' && r.errorCode === 'InvalidCiphertextException')).to.have.length(4);
    expect(records.some((r) => r.errorCode === 'AuthenticationFailedException')).to.equal(true);
    const text = JSON.stringify(records);
    expect(text).not.to.include(Buffer.alloc(4300, 7).toString('base64').slice(0, 40));
  });
});
