/**
 * External key stores against a scripted XKS proxy (an HTTPS server with a test CA): input
 * validation, which settings Update takes while connected, each way a proxy can fail, and
 * concurrent use across a Disconnect/Connect. Every KMS call goes through @aws-sdk/client-kms.
 */
import { createCipheriv, createDecipheriv, createHash, randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import * as https from 'node:https';
import type { AddressInfo } from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { expect } from 'chai';
import {
  ConnectCustomKeyStoreCommand,
  CreateCustomKeyStoreCommand,
  CreateKeyCommand,
  DecryptCommand,
  DeleteCustomKeyStoreCommand,
  DescribeCustomKeyStoresCommand,
  DisconnectCustomKeyStoreCommand,
  EnableKeyRotationCommand,
  EncryptCommand,
  GenerateDataKeyCommand,
  GenerateDataKeyPairCommand,
  type KMSClient,
  ListKeysCommand,
  RotateKeyOnDemandCommand,
  UpdateCustomKeyStoreCommand,
} from '@aws-sdk/client-kms';
import { expectKmsError, serverPerSuite, type TestServer } from '../support/server';
import { listTokenObjects } from '../support/token-tool';
import { TestCa } from '../support/test-ca';
import { makeTestPki, settledStore, type TestPki, XKS_CREDENTIAL } from '../support/xks';

/** AWS KMS's messages for proxy failures (XKS Proxy API spec v1, "Error codes", KMS considerations). */
const SPEC_MESSAGES: Record<string, string> = {
  'cannot-interpret': 'AWS KMS cannot interpret the response from the external key store proxy. If you see this error repeatedly, report it to your external key store proxy administrator.',
  AuthenticationFailedException: 'The external key store proxy rejected the request because it could not authenticate AWS KMS. Verify the XKS proxy authentication credentials for your external key store and update if necessary.',
  InvalidUriPathException: 'The external key store proxy rejected the request because of an invalid URI path. Verify the URI path for your external key store and update if necessary.',
  DependencyTimeoutException: 'The external key store proxy did not respond to the request in the time allotted. Retry the request. If you see this error repeatedly, report it to your external key store proxy administrator.',
  InternalException: 'The external key store proxy rejected the request because it cannot communicate with the external key manager. Verify that the external key store proxy configuration is correct and that the external key manager is available.',
};

/** What the scripted proxy answers next: a normal proxy, or one failure. */
type Mode = 'ok' | 'bad-integrity' | 'all-unavailable' | 'non-json' | 'no-error-name' | 'silent' | { status: number; errorName: string };

describe('external key stores: validation and proxy failures (scripted proxy)', function () {
  this.timeout(90_000);
  let b: TestServer;
  let kms: KMSClient;
  let proxy: https.Server;
  let mode: Mode = 'ok';
  let dir: string;
  const externalKey = randomBytes(32);
  const credential = { AccessKeyId: XKS_CREDENTIAL.accessKeyId, RawSecretAccessKey: XKS_CREDENTIAL.secretAccessKey };

  const answer = (url: string, body: Record<string, string>): [number, unknown] => {
    if (url.endsWith('/health')) return [200, { xksProxyFleetSize: 1, xksProxyVendor: 't', xksProxyModel: 't', ekmVendor: 't', ekmFleetDetails: [{ id: 'h', model: 't', healthStatus: mode === 'all-unavailable' ? 'UNAVAILABLE' : 'ACTIVE' }] }];
    const [, keyId, api] = /\/keys\/([^/]+)\/(\w+)$/.exec(url) ?? [];
    if (keyId === 'missing') return [404, { errorName: 'KeyNotFoundException' }];
    if (keyId === 'denied') return [403, { errorName: 'AccessDeniedException', errorMessage: 'denied by policy' }];
    if (api === 'metadata') return [200, { keySpec: 'AES_256', keyUsage: keyId === 'encrypt-only' ? ['ENCRYPT'] : ['ENCRYPT', 'DECRYPT'], keyStatus: keyId === 'disabled' ? 'DISABLED' : 'ENABLED' }];
    const aad = Buffer.from(body.additionalAuthenticatedData ?? '', 'base64');
    if (api === 'encrypt') {
      const iv = randomBytes(12);
      const cipher = createCipheriv('aes-256-gcm', externalKey, iv).setAAD(aad);
      const ciphertext = Buffer.concat([cipher.update(Buffer.from(body.plaintext, 'base64')), cipher.final()]);
      const tag = cipher.getAuthTag();
      // The spec's ciphertextDataIntegrityValue; 'bad-integrity' answers one for other bytes.
      const integrity = createHash('sha256').update(Buffer.concat([aad, iv, ciphertext, mode === 'bad-integrity' ? iv : tag])).digest('base64');
      expect(body.ciphertextDataIntegrityValueAlgorithm).to.equal('SHA_256');
      return [200, { ciphertext: ciphertext.toString('base64'), initializationVector: iv.toString('base64'), authenticationTag: tag.toString('base64'), ciphertextDataIntegrityValue: integrity }];
    }
    const decipher = createDecipheriv('aes-256-gcm', externalKey, Buffer.from(body.initializationVector, 'base64')).setAAD(aad);
    decipher.setAuthTag(Buffer.from(body.authenticationTag, 'base64'));
    return [200, { plaintext: Buffer.concat([decipher.update(Buffer.from(body.ciphertext, 'base64')), decipher.final()]).toString('base64') }];
  };

  const create = (over: Record<string, unknown> = {}) =>
    kms.send(
      new CreateCustomKeyStoreCommand({
        CustomKeyStoreName: `xks-${randomBytes(4).toString('hex')}`,
        CustomKeyStoreType: 'EXTERNAL_KEY_STORE',
        XksProxyConnectivity: 'PUBLIC_ENDPOINT',
        XksProxyUriEndpoint: 'https://localhost',
        XksProxyUriPath: `/${randomBytes(4).toString('hex')}/kms/xks/v1`,
        XksProxyAuthenticationCredential: credential,
        ...over,
      }),
    );
  const stateOf = (id: string) => settledStore(kms, id);
  const connected = async (over: Record<string, unknown> = {}) => {
    const id = (await create(over)).CustomKeyStoreId!;
    await kms.send(new ConnectCustomKeyStoreCommand({ CustomKeyStoreId: id }));
    expect((await stateOf(id)).ConnectionState).to.equal('CONNECTED');
    return id;
  };
  const errorOf = async (promise: Promise<unknown>) => {
    const err = await expectKmsError(promise);
    return `${err.name} ${err.$metadata?.httpStatusCode}`;
  };

  let pki: TestPki;
  before(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'p11kms-xks-fail-'));
    pki = makeTestPki(dir);
    proxy = https.createServer({ cert: fs.readFileSync(pki.serverCertFile), key: fs.readFileSync(pki.serverKeyFile) }, (req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        if (mode === 'silent') return;
        if (mode === 'non-json') return void res.writeHead(200, { 'content-type': 'text/html' }).end('<html>proxy</html>');
        if (mode === 'no-error-name') return void res.writeHead(500, { 'content-type': 'application/json' }).end('{}');
        const [status, body] = typeof mode === 'object' ? [mode.status, { errorName: mode.errorName }] : answer(req.url!, JSON.parse(Buffer.concat(chunks).toString('utf8')) as Record<string, string>);
        res.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify(body));
      });
    });
    await new Promise<void>((resolve) => proxy.listen(0, '127.0.0.1', resolve));
  });
  // Registered before the server's hooks, so that it looks at the server's log and files before it stops.
  after(() => {
    // The proxy's secret is nowhere: not in the log, the metadata store or the audit trail.
    if (b) expect(b.stderr()).not.to.include(credential.RawSecretAccessKey).and.not.to.include('short-secret');
    for (const file of b ? fs.readdirSync(b.dataDir, { recursive: true, encoding: 'utf8' }) : []) {
      const full = path.join(b.dataDir, file);
      if (fs.statSync(full).isFile() && /\.(json|jsonl)$/.test(file)) expect(fs.readFileSync(full, 'utf8'), file).not.to.include(credential.RawSecretAccessKey);
    }
  });
  // A deadline well above AWS's 250 ms keeps a loaded machine from failing the tests; 'silent' still hits it.
  serverPerSuite(
    () => ({ env: { P11KMS_XKS_TRUSTED_CA_FILE: pki.caFile, P11KMS_XKS_PROXY_PORT: String((proxy.address() as AddressInfo).port), P11KMS_XKS_PROXY_TIMEOUT_MS: '3000' } }),
    (started, client) => ([b, kms] = [started, client]),
  );

  afterEach(() => {
    mode = 'ok';
  });

  after(() => {
    proxy?.closeAllConnections();
    proxy?.close();
  });

  it('validates the proxy settings as the model does, never echoing the secret', async () => {
    for (const bad of [
      { XksProxyUriPath: '/kms/xks/v1/' },
      { XksProxyUriPath: 'tenant/kms/xks/v1' },
      { XksProxyUriPath: '/tenant/kms/xks/v100' },
      { XksProxyUriEndpoint: 'https://localhost:8443' },
      { XksProxyUriEndpoint: 'http://localhost.x' },
      { XksProxyAuthenticationCredential: { ...credential, AccessKeyId: 'xkstestaccesskey2345' } },
      { XksProxyAuthenticationCredential: { ...credential, RawSecretAccessKey: 'short-secret-with-dashes-that-is-not-valid' } },
    ]) {
      const err = await expectKmsError(create(bad));
      expect(`${err.name} ${err.$metadata?.httpStatusCode}`, JSON.stringify(bad)).to.equal('ValidationException 400');
      expect(err.message).not.to.include('short-secret');
    }
    expect(await errorOf(create({ XksProxyUriEndpoint: 'https://127.0.0.1' }))).to.equal('XksProxyInvalidConfigurationException 400');
    expect(await errorOf(create({ XksProxyConnectivity: 'VPC_ENDPOINT_SERVICE', XksProxyVpcEndpointServiceName: 'com.amazonaws.vpce.eu-west-1.vpce-svc-0123456789abcdef0' }))).to.equal('UnsupportedOperationException 400');
    const id = (await create({ CustomKeyStoreName: 'taken', XksProxyUriPath: '/shared/kms/xks/v1' })).CustomKeyStoreId!;
    expect(await errorOf(create({ CustomKeyStoreName: 'taken' }))).to.equal('CustomKeyStoreNameInUseException 400');
    expect(await errorOf(create({ XksProxyUriPath: '/shared/kms/xks/v1' }))).to.equal('XksProxyUriInUseException 400');
    await kms.send(new DeleteCustomKeyStoreCommand({ CustomKeyStoreId: id }));
  });

  it('takes the name, path and credential while connected; the endpoint only when disconnected', async () => {
    const id = await connected();
    await kms.send(new UpdateCustomKeyStoreCommand({ CustomKeyStoreId: id, NewCustomKeyStoreName: `renamed-${id}`, XksProxyUriPath: `/moved-${id.slice(4, 12)}/kms/xks/v1`, XksProxyAuthenticationCredential: credential }));
    expect(await errorOf(kms.send(new UpdateCustomKeyStoreCommand({ CustomKeyStoreId: id, XksProxyUriEndpoint: 'https://localhost' })))).to.equal('CustomKeyStoreInvalidStateException 400');
    expect(await errorOf(kms.send(new DeleteCustomKeyStoreCommand({ CustomKeyStoreId: id })))).to.equal('CustomKeyStoreInvalidStateException 400');
    const entry = (await kms.send(new DescribeCustomKeyStoresCommand({ CustomKeyStoreId: id }))).CustomKeyStores![0];
    expect(entry).to.include({ CustomKeyStoreName: `renamed-${id}`, ConnectionState: 'CONNECTED' });
    expect(JSON.stringify(entry)).not.to.include(credential.RawSecretAccessKey);
  });

  it('refuses external keys that are missing, disabled, encrypt-only or already taken (also by a concurrent CreateKey)', async () => {
    const id = await connected();
    const key = (xksKeyId: string) => kms.send(new CreateKeyCommand({ CustomKeyStoreId: id, Origin: 'EXTERNAL_KEY_STORE', XksKeyId: xksKeyId }));
    expect(await errorOf(key('missing'))).to.equal('XksKeyNotFoundException 400');
    // The XKS spec's table: AccessDeniedException is KMSInvalidStateException for CreateKey too,
    // with the spec's message (never the proxy's errorMessage).
    const denied = await expectKmsError(key('denied'));
    expect(`${denied.name} ${denied.$metadata?.httpStatusCode}`).to.equal('KMSInvalidStateException 400');
    expect(denied.message).to.equal('The external key store proxy denied access to the operation. Verify that the user and the external key are both authorized for this operation, and try the request again.');
    // The id goes into the proxy's URI path: the model's pattern keeps '/' and '?' out.
    expect(await errorOf(key('../health'))).to.equal('ValidationException 400');
    expect(await errorOf(key('x?y'))).to.equal('ValidationException 400');
    expect(await errorOf(key('disabled'))).to.equal('XksKeyInvalidConfigurationException 400');
    expect(await errorOf(key('encrypt-only'))).to.equal('XksKeyInvalidConfigurationException 400');
    const outcomes = await Promise.allSettled([key('raced'), key('raced'), key('raced')]);
    expect(outcomes.filter((o) => o.status === 'fulfilled')).to.have.length(1);
    for (const o of outcomes) if (o.status === 'rejected') expect((o.reason as Error).name).to.equal('XksKeyAlreadyInUseException');
    // The losers' material is gone from the token: every KMS key object belongs to a listed key.
    const listed = new Set((await kms.send(new ListKeysCommand({ Limit: 1000 }))).Keys!.map((k) => k.KeyId));
    expect(listTokenObjects(b.dataDir).map((o) => /^p11kms:([0-9a-f-]{36}):v\d+$/.exec(o.label)?.[1]).filter((k) => k && !listed.has(k))).to.deep.equal([]);
    const won = (outcomes.find((o) => o.status === 'fulfilled') as PromiseFulfilledResult<{ KeyMetadata?: { KeyId?: string } }>).value.KeyMetadata!.KeyId!;
    for (const refused of [new EnableKeyRotationCommand({ KeyId: won }), new RotateKeyOnDemandCommand({ KeyId: won }), new GenerateDataKeyPairCommand({ KeyId: won, KeyPairSpec: 'RSA_2048' })]) {
      expect(await errorOf(kms.send(refused as never)), refused.constructor.name).to.equal('UnsupportedOperationException 400');
    }
    await kms.send(new DisconnectCustomKeyStoreCommand({ CustomKeyStoreId: id }));
    expect(await errorOf(kms.send(new DeleteCustomKeyStoreCommand({ CustomKeyStoreId: id })))).to.equal('CustomKeyStoreHasCMKsException 400');
  });

  it("maps each proxy failure to AWS's exception (Create) and KMSInvalidStateException (crypto)", async () => {
    const id = await connected();
    const keyId = (await kms.send(new CreateKeyCommand({ CustomKeyStoreId: id, Origin: 'EXTERNAL_KEY_STORE', XksKeyId: 'failures' }))).KeyMetadata!.KeyId!;
    const sealed = await kms.send(new EncryptCommand({ KeyId: keyId, Plaintext: Buffer.from('x') }));
    const probes: Array<[Mode, string]> = [
      ['non-json', 'XksProxyInvalidResponseException 400'],
      ['no-error-name', 'XksProxyInvalidResponseException 400'],
      [{ status: 401, errorName: 'AuthenticationFailedException' }, 'XksProxyIncorrectAuthenticationCredentialException 400'],
      [{ status: 404, errorName: 'InvalidUriPathException' }, 'XksProxyInvalidConfigurationException 400'],
      [{ status: 503, errorName: 'DependencyTimeoutException' }, 'XksProxyUriUnreachableException 400'],
      [{ status: 500, errorName: 'InternalException' }, 'XksProxyInvalidResponseException 400'],
    ];
    for (const [m, expected] of probes) {
      mode = m;
      const probed = await expectKmsError(create());
      expect(`${probed.name} ${probed.$metadata?.httpStatusCode}`, JSON.stringify(m)).to.equal(expected);
      const refused = await expectKmsError(kms.send(new DecryptCommand({ CiphertextBlob: sealed.CiphertextBlob })));
      expect(`${refused.name} ${refused.$metadata?.httpStatusCode}`, JSON.stringify(m)).to.equal('KMSInvalidStateException 400');
      // The spec's fixed message for the failure, whatever the operation.
      expect(refused.message, JSON.stringify(m)).to.equal(SPEC_MESSAGES[typeof m === 'object' ? m.errorName : 'cannot-interpret']);
      expect(probed.message, JSON.stringify(m)).to.equal(refused.message);
    }
    // The model: XksProxyUriUnreachableException also when every key manager is UNAVAILABLE.
    mode = 'all-unavailable';
    expect(await errorOf(create())).to.equal('XksProxyUriUnreachableException 400');
    mode = 'bad-integrity';
    expect(await errorOf(kms.send(new GenerateDataKeyCommand({ KeyId: keyId, KeySpec: 'AES_256' })))).to.equal('KMSInvalidStateException 400');
    mode = 'ok';
    // A certificate from a CA p11kms does not trust: new connections fail their handshake.
    const stranger = new TestCa(path.join(dir, 'stranger'), 'stranger').server('xks-proxy');
    proxy.setSecureContext({ cert: fs.readFileSync(stranger.cert), key: fs.readFileSync(stranger.key) });
    proxy.closeAllConnections();
    expect(await errorOf(create())).to.equal('XksProxyUriUnreachableException 400');
    expect(await errorOf(kms.send(new EncryptCommand({ KeyId: keyId, Plaintext: Buffer.from('x') })))).to.equal('KMSInvalidStateException 400');
    await kms.send(new DisconnectCustomKeyStoreCommand({ CustomKeyStoreId: id }));
    await kms.send(new ConnectCustomKeyStoreCommand({ CustomKeyStoreId: id }));
    expect(await stateOf(id)).to.include({ ConnectionState: 'FAILED', ConnectionErrorCode: 'XKS_PROXY_INVALID_TLS_CONFIGURATION' });
    proxy.setSecureContext({ cert: fs.readFileSync(path.join(dir, 'xks-proxy.pem')), key: fs.readFileSync(path.join(dir, 'xks-proxy.key')) });
    await kms.send(new DisconnectCustomKeyStoreCommand({ CustomKeyStoreId: id }));
    await kms.send(new ConnectCustomKeyStoreCommand({ CustomKeyStoreId: id }));
    expect((await stateOf(id)).ConnectionState).to.equal('CONNECTED');
    mode = 'silent';
    expect(await errorOf(kms.send(new EncryptCommand({ KeyId: keyId, Plaintext: Buffer.from('x') })))).to.equal('KMSInvalidStateException 400');
    await kms.send(new DisconnectCustomKeyStoreCommand({ CustomKeyStoreId: id }));
    await kms.send(new ConnectCustomKeyStoreCommand({ CustomKeyStoreId: id }));
    expect(await stateOf(id)).to.include({ ConnectionState: 'FAILED', ConnectionErrorCode: 'XKS_PROXY_TIMED_OUT' });
    // A FAILED store takes no Update, not even of its name, until it is disconnected.
    expect(await errorOf(kms.send(new UpdateCustomKeyStoreCommand({ CustomKeyStoreId: id, NewCustomKeyStoreName: `failed-${id}` })))).to.equal('CustomKeyStoreInvalidStateException 400');
    await kms.send(new DisconnectCustomKeyStoreCommand({ CustomKeyStoreId: id }));
    await kms.send(new UpdateCustomKeyStoreCommand({ CustomKeyStoreId: id, NewCustomKeyStoreName: `failed-${id}` }));
  });

  it('several clients encrypting across a Disconnect and Connect each succeed or get KMSInvalidStateException', async () => {
    const id = await connected();
    const keyId = (await kms.send(new CreateKeyCommand({ CustomKeyStoreId: id, Origin: 'EXTERNAL_KEY_STORE', XksKeyId: 'busy' }))).KeyMetadata!.KeyId!;
    const clients = [b.client(), b.client(), b.client()];
    const results: string[] = [];
    let running = true;
    const worker = async (client: KMSClient, n: number) => {
      for (let i = 0; running || i < 3; i++) {
        const plaintext = Buffer.from(`client ${n} message ${i}`);
        try {
          const sealed = await client.send(new EncryptCommand({ KeyId: keyId, Plaintext: plaintext }));
          results.push('ok');
          const opened = await client.send(new DecryptCommand({ CiphertextBlob: sealed.CiphertextBlob })).catch((err: Error) => err);
          if (opened instanceof Error) results.push(opened.name);
          else expect(Buffer.from(opened.Plaintext!).equals(plaintext)).to.equal(true);
        } catch (err) {
          results.push((err as Error).name);
        }
      }
    };
    const workers = clients.map((c, n) => worker(c, n));
    await kms.send(new DisconnectCustomKeyStoreCommand({ CustomKeyStoreId: id }));
    await kms.send(new ConnectCustomKeyStoreCommand({ CustomKeyStoreId: id }));
    expect((await stateOf(id)).ConnectionState).to.equal('CONNECTED');
    running = false;
    await Promise.all(workers);
    expect(new Set(results)).to.satisfy((s: Set<string>) => [...s].every((n) => n === 'ok' || n === 'KMSInvalidStateException'));
    expect(results).to.include('ok');
  });
});
