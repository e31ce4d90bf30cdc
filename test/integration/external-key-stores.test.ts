/**
 * External key stores end to end, with p11kms on both sides: instance B's
 * EXTERNAL_KEY_STORE points at instance A's XKS listener over HTTPS with a test CA made at
 * test time (B trusts it through xksTrustedCaFile). Every KMS call goes through
 * @aws-sdk/client-kms; what A did is checked in A's token and A's audit trail.
 */
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { expect } from 'chai';
import {
  ConnectCustomKeyStoreCommand,
  CreateCustomKeyStoreCommand,
  CreateKeyCommand,
  DecryptCommand,
  DescribeCustomKeyStoresCommand,
  DescribeKeyCommand,
  DisconnectCustomKeyStoreCommand,
  EncryptCommand,
  GenerateDataKeyCommand,
  GenerateDataKeyWithoutPlaintextCommand,
  type KMSClient,
  ReEncryptCommand,
} from '@aws-sdk/client-kms';
import { expectKmsError, serverPerSuite, type TestServer } from '../support/server';
import { listTokenObjects } from '../support/token-tool';
import { createExternalKey, makeTestPki, settledStore, type TestPki, writeXksSettings, XKS_CREDENTIAL } from '../support/xks';

const URI_PATH = '/tenant-a/kms/xks/v1';

describe('external key stores (B) backed by p11kms XKS proxy (A)', function () {
  this.timeout(90_000);
  let a: TestServer;
  let b: TestServer;
  let kms: KMSClient;
  let storeId: string;
  let keyId: string;
  let xksPort: number;

  const store = (over: Record<string, unknown> = {}) =>
    new CreateCustomKeyStoreCommand({
      CustomKeyStoreName: 'xks',
      CustomKeyStoreType: 'EXTERNAL_KEY_STORE',
      XksProxyConnectivity: 'PUBLIC_ENDPOINT',
      XksProxyUriEndpoint: 'https://localhost',
      XksProxyUriPath: URI_PATH,
      XksProxyAuthenticationCredential: { AccessKeyId: XKS_CREDENTIAL.accessKeyId, RawSecretAccessKey: XKS_CREDENTIAL.secretAccessKey },
      ...over,
    });
  const settled = (id: string) => settledStore(kms, id);
  const trailOf = (server: TestServer) => {
    const dir = path.join(server.dataDir, 'audit');
    return fs
      .readdirSync(dir)
      .filter((f) => f.endsWith('.jsonl'))
      .flatMap((f) => fs.readFileSync(path.join(dir, f), 'utf8').split('\n').filter(Boolean))
      .map((l) => JSON.parse(l) as { eventName: string; requestParameters?: Record<string, string>; requestID?: string });
  };

  let pki: TestPki;
  serverPerSuite(() => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'p11kms-xks-e2e-'));
    pki = makeTestPki(dir);
    return { env: { P11KMS_XKS_PROXY_FILE: writeXksSettings(dir, pki) } };
  }, (started) => {
    a = started;
    xksPort = Number(new URL(a.xksEndpoint!).port);
  });
  before(() => createExternalKey(a.dataDir, 'xks-key-1'));
  // B trusts the test CA beside the system roots, and calls the proxy on A's port instead
  // of 443; its deadline is raised from AWS's 250 ms so a loaded test machine cannot fail it.
  // Its hooks come after A's: A stops first, as before.
  serverPerSuite(() => ({ env: { P11KMS_XKS_TRUSTED_CA_FILE: pki.caFile, P11KMS_XKS_PROXY_PORT: String(xksPort), P11KMS_XKS_PROXY_TIMEOUT_MS: '5000' } }), (started, client) => ([b, kms] = [started, client]));

  it('creates the store after a health check, refusing a wrong credential or path as AWS does', async () => {
    const wrongSecret = await expectKmsError(kms.send(store({ XksProxyAuthenticationCredential: { AccessKeyId: XKS_CREDENTIAL.accessKeyId, RawSecretAccessKey: 'd3Jvbmctc2VjcmV0LXdyb25nLXNlY3JldC13cm9uZy1zZWNyZXQtMQ==' } })));
    expect(wrongSecret.name).to.equal('XksProxyIncorrectAuthenticationCredentialException');
    expect((await expectKmsError(kms.send(store({ XksProxyUriPath: '/tenant-z/kms/xks/v1' })))).name).to.equal('XksProxyInvalidConfigurationException');
    storeId = (await kms.send(store())).CustomKeyStoreId!;
    const entry = (await kms.send(new DescribeCustomKeyStoresCommand({ CustomKeyStoreId: storeId }))).CustomKeyStores![0];
    expect(entry).to.include({ CustomKeyStoreType: 'EXTERNAL_KEY_STORE', ConnectionState: 'DISCONNECTED' });
    expect(entry.XksProxyConfiguration).to.deep.equal({ Connectivity: 'PUBLIC_ENDPOINT', AccessKeyId: XKS_CREDENTIAL.accessKeyId, UriEndpoint: 'https://localhost', UriPath: URI_PATH });
    expect((await expectKmsError(kms.send(store({ CustomKeyStoreName: 'again' })))).name).to.equal('XksProxyUriInUseException');
    await kms.send(new ConnectCustomKeyStoreCommand({ CustomKeyStoreId: storeId }));
    expect((await settled(storeId)).ConnectionState).to.equal('CONNECTED');
    expect(fs.readFileSync(path.join(b.dataDir, 'metadata.json'), 'utf8')).not.to.include(XKS_CREDENTIAL.secretAccessKey);
  });

  it('creates a key only for an external key that exists and is free', async () => {
    const missing = await expectKmsError(kms.send(new CreateKeyCommand({ CustomKeyStoreId: storeId, Origin: 'EXTERNAL_KEY_STORE', XksKeyId: 'no-such-key' })));
    expect(missing.name).to.equal('XksKeyNotFoundException');
    const meta = (await kms.send(new CreateKeyCommand({ CustomKeyStoreId: storeId, Origin: 'EXTERNAL_KEY_STORE', XksKeyId: 'xks-key-1' }))).KeyMetadata!;
    expect(meta).to.include({ CustomKeyStoreId: storeId, Origin: 'EXTERNAL_KEY_STORE', KeyState: 'Enabled' });
    expect(meta.XksKeyConfiguration).to.deep.equal({ Id: 'xks-key-1' });
    // AWS: CurrentKeyMaterialId is present for symmetric keys of origin AWS_KMS or EXTERNAL only.
    expect(meta).not.to.have.property('CurrentKeyMaterialId');
    expect((await kms.send(new DescribeKeyCommand({ KeyId: meta.KeyId }))).KeyMetadata).not.to.have.property('CurrentKeyMaterialId');
    keyId = meta.KeyId!;
    expect((await expectKmsError(kms.send(new CreateKeyCommand({ CustomKeyStoreId: storeId, Origin: 'EXTERNAL_KEY_STORE', XksKeyId: 'xks-key-1' })))).name).to.equal('XksKeyAlreadyInUseException');
    // A's token holds the external key; B's holds only B's own material for the KMS key.
    expect(listTokenObjects(a.dataDir).map((o) => o.label)).to.include('p11kms-xks:xks-key-1');
    expect(listTokenObjects(b.dataDir).map((o) => o.label)).to.include(`p11kms:${keyId}:v1`);
  });

  it("encrypts twice (B's material, then A's external key) and A's trail names B's request and caller", async () => {
    const plaintext = Buffer.from('double-encrypted through two tokens');
    const sealed = await kms.send(new EncryptCommand({ KeyId: keyId, Plaintext: plaintext, EncryptionContext: { tenant: 'a' } }));
    expect(Buffer.from(sealed.CiphertextBlob!)[0]).to.equal(3);
    const record = trailOf(a).find((r) => r.eventName === 'XksEncrypt' && r.requestParameters?.kmsRequestId === sealed.$metadata.requestId);
    expect(record?.requestParameters).to.include({ kmsOperation: 'Encrypt', awsPrincipalArn: 'arn:aws:iam::111122223333:root', externalKeyId: 'xks-key-1' });
    expect(record?.requestParameters?.kmsKeyArn).to.match(new RegExp(`key/${keyId}$`));
    const opened = await kms.send(new DecryptCommand({ CiphertextBlob: sealed.CiphertextBlob, EncryptionContext: { tenant: 'a' } }));
    expect(Buffer.from(opened.Plaintext!).equals(plaintext)).to.equal(true);
    expect(trailOf(a).some((r) => r.eventName === 'XksDecrypt' && r.requestParameters?.kmsRequestId === opened.$metadata.requestId)).to.equal(true);
    expect((await expectKmsError(kms.send(new DecryptCommand({ CiphertextBlob: sealed.CiphertextBlob, EncryptionContext: { tenant: 'b' } })))).name).to.equal('InvalidCiphertextException');

    const dataKey = await kms.send(new GenerateDataKeyCommand({ KeyId: keyId, NumberOfBytes: 32 }));
    expect(Buffer.from((await kms.send(new DecryptCommand({ CiphertextBlob: dataKey.CiphertextBlob }))).Plaintext!).equals(Buffer.from(dataKey.Plaintext!))).to.equal(true);
    const hidden = await kms.send(new GenerateDataKeyWithoutPlaintextCommand({ KeyId: keyId, KeySpec: 'AES_256' }));
    const main = (await kms.send(new CreateKeyCommand({}))).KeyMetadata!.KeyId!;
    const moved = await kms.send(new ReEncryptCommand({ CiphertextBlob: hidden.CiphertextBlob, DestinationKeyId: main }));
    const back = await kms.send(new ReEncryptCommand({ CiphertextBlob: moved.CiphertextBlob, DestinationKeyId: keyId }));
    const one = await kms.send(new DecryptCommand({ CiphertextBlob: moved.CiphertextBlob }));
    const two = await kms.send(new DecryptCommand({ CiphertextBlob: back.CiphertextBlob }));
    expect(Buffer.from(one.Plaintext!).equals(Buffer.from(two.Plaintext!))).to.equal(true);
  });

  it("answers KMSInvalidStateException when A is gone or silent, and a reconnect fails with AWS's code", async () => {
    const sealed = await kms.send(new EncryptCommand({ KeyId: keyId, Plaintext: Buffer.from('before A stops') }));
    await a.stop();
    const unreachable = await expectKmsError(kms.send(new DecryptCommand({ CiphertextBlob: sealed.CiphertextBlob })));
    expect(unreachable.name).to.equal('KMSInvalidStateException');
    expect(unreachable.message).to.equal('AWS KMS cannot communicate with the external key store proxy. This might be a transient network issue. If you see this error repeatedly, verify that your external key store proxy is active and is connected to the network, and that its endpoint URI is correct in your external keystore.');
    expect((await expectKmsError(kms.send(new EncryptCommand({ KeyId: keyId, Plaintext: Buffer.from('x') })))).name).to.equal('KMSInvalidStateException');

    // A listener that accepts and never answers: the call's deadline ends it.
    const silent = net.createServer(() => undefined);
    await new Promise<void>((resolve) => silent.listen(xksPort, '127.0.0.1', resolve));
    try {
      const timedOut = await expectKmsError(kms.send(new DecryptCommand({ CiphertextBlob: sealed.CiphertextBlob })));
      expect(timedOut.name).to.equal('KMSInvalidStateException');
      expect(timedOut.message).to.equal('AWS KMS rejected the request because the external key store proxy did not respond in time. Retry the request. If you see this error repeatedly, report it to your external key store proxy administrator.');
    } finally {
      silent.close();
    }
    await kms.send(new DisconnectCustomKeyStoreCommand({ CustomKeyStoreId: storeId }));
    await kms.send(new ConnectCustomKeyStoreCommand({ CustomKeyStoreId: storeId }));
    expect(await settled(storeId)).to.include({ ConnectionState: 'FAILED', ConnectionErrorCode: 'XKS_PROXY_NOT_REACHABLE' });
  });
});
