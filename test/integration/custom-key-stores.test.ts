/**
 * Custom key stores of type AWS_CLOUDHSM: a second SoftHSM2 token beside the main one,
 * named by its cluster id in the config. Every claim about which token holds a key is
 * checked through PKCS#11 from another process, not through the service.
 */
import * as fs from 'node:fs';
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
  DescribeKeyCommand,
  DisconnectCustomKeyStoreCommand,
  EnableKeyRotationCommand,
  EncryptCommand,
  GenerateDataKeyCommand,
  GenerateDataKeyWithoutPlaintextCommand,
  GenerateRandomCommand,
  type KMSClient,
  ReEncryptCommand,
  ScheduleKeyDeletionCommand,
  UpdateCustomKeyStoreCommand,
} from '@aws-sdk/client-kms';
import type { FaultRule } from '../../src/custody/faults';
import { custodyFindings, readStore } from '../support/custody-invariants';
import { expectKmsError, serverPerSuite, type TestServer } from '../support/server';
import { destroyTokenObject, initSecondToken, listTokenObjects } from '../support/token-tool';

const ROOT = path.resolve(__dirname, '..', '..', '..');
const CLUSTER = 'cluster-softhsmbackend';
const OTHER_CLUSTER = 'cluster-missingbackend';
const BACKEND = { label: 'p11kms-backend', pin: 'backend-pin-7' };
const BROKEN_ANCHOR = [
  '-----BEGIN CERTIFICATE-----',
  'MIIBfTCCASOgAwIBAgIUQ4m3kqVJ3w2C0qzv6uX0sW7d1LUwCgYIKoZIzj0EAwIw',
  'FDESMBAGA1UEAwwJdGVzdCBjYSAxMB4XDTI0MDEwMTAwMDAwMFoXDTM0MDEwMTAw',
  'MDAwMFowFDESMBAGA1UEAwwJdGVzdCBjYSAxMFkwEwYHKoZIzj0CAQYIKoZIzj0D',
  'AQcDQgAE',
].join('\n');

describe('custom key stores: another PKCS#11 token (AWS_CLOUDHSM)', function () {
  this.timeout(60_000);
  let server: TestServer;
  let kms: KMSClient;
  let storeId: string;
  let trustAnchor: string;
  let faultFile: string;
  const inject = (rules: FaultRule[]) => fs.writeFileSync(faultFile, JSON.stringify(rules));

  const stateOf = async (id: string) => (await kms.send(new DescribeCustomKeyStoresCommand({ CustomKeyStoreId: id }))).CustomKeyStores![0];
  /** Connect is asynchronous (as on AWS): wait for the attempt to end, by state, not by time. */
  const settled = async (id: string) => {
    for (;;) {
      const entry = await stateOf(id);
      if (entry.ConnectionState !== 'CONNECTING') return entry;
      await new Promise((r) => setTimeout(r, 20));
    }
  };

  const suite = serverPerSuite(() => {
    const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'p11kms-cks-'));
    initSecondToken(dataDir, path.join(ROOT, 'softhsm.conf'), BACKEND);
    const missingProfile = path.join(dataDir, 'missing-backend.json');
    fs.writeFileSync(missingProfile, JSON.stringify({ name: 'nowhere', module: '/usr/lib/softhsm/libsofthsm2.so', tokenLabel: 'no-such-token' }));
    faultFile = path.join(dataDir, 'faults.json');
    inject([]);
    return {
      dataDir,
      // A hung token call outlasts any test (the crash test kills the process during one).
      env: { NODE_ENV: 'test', P11KMS_TEST_FAULTS: faultFile, P11KMS_TOKEN_CALL_TIMEOUT_SECONDS: '3600', P11KMS_INTENT_LEASE_SECONDS: '7200', P11KMS_TOKEN_BACKENDS: `${CLUSTER}=${path.join(ROOT, 'native-config', 'softhsm2-backend.json')},${OTHER_CLUSTER}=${missingProfile}` },
    };
  }, (started, client) => ([server, kms] = [started, client]));
  before(() => {
    trustAnchor = makeCertificate();
  });

  it('creates a store that keeps the PIN only sealed, and refuses what AWS refuses', async () => {
    const created = await kms.send(new CreateCustomKeyStoreCommand({ CustomKeyStoreName: 'backend', CloudHsmClusterId: CLUSTER, TrustAnchorCertificate: trustAnchor, KeyStorePassword: 'wrong-pin-1' }));
    storeId = created.CustomKeyStoreId!;
    expect(storeId).to.match(/^cks-[0-9a-f]{17}$/);
    const entry = await stateOf(storeId);
    expect(entry).to.include({ CustomKeyStoreName: 'backend', CloudHsmClusterId: CLUSTER, ConnectionState: 'DISCONNECTED', CustomKeyStoreType: 'AWS_CLOUDHSM', TrustAnchorCertificate: trustAnchor });
    expect(entry).not.to.have.property('ConnectionErrorCode');

    expect((await expectKmsError(kms.send(new CreateCustomKeyStoreCommand({ CustomKeyStoreName: 'backend', CloudHsmClusterId: OTHER_CLUSTER, TrustAnchorCertificate: trustAnchor, KeyStorePassword: 'whatever1' })))).name).to.equal('CustomKeyStoreNameInUseException');
    expect((await expectKmsError(kms.send(new CreateCustomKeyStoreCommand({ CustomKeyStoreName: 'again', CloudHsmClusterId: CLUSTER, TrustAnchorCertificate: trustAnchor, KeyStorePassword: 'whatever1' })))).name).to.equal('CloudHsmClusterInUseException');
    expect((await expectKmsError(kms.send(new CreateCustomKeyStoreCommand({ CustomKeyStoreName: 'unknown', CloudHsmClusterId: 'cluster-notconfigured', TrustAnchorCertificate: trustAnchor, KeyStorePassword: 'whatever1' })))).name).to.equal('CloudHsmClusterNotFoundException');
    expect((await expectKmsError(kms.send(new CreateCustomKeyStoreCommand({ CustomKeyStoreName: 'anchor', CloudHsmClusterId: OTHER_CLUSTER, TrustAnchorCertificate: BROKEN_ANCHOR, KeyStorePassword: 'whatever1' })))).name).to.equal('IncorrectTrustAnchorException');
    const err = await expectKmsError(kms.send(new CreateKeyCommand({ CustomKeyStoreId: storeId, Origin: 'AWS_CLOUDHSM' })));
    expect(err.name).to.equal('CustomKeyStoreInvalidStateException');
    expect((await expectKmsError(kms.send(new CreateKeyCommand({ Origin: 'AWS_CLOUDHSM' })))).name).to.equal('ValidationException');
  });

  it('fails to connect with a wrong PIN (INVALID_CREDENTIALS), then connects after Disconnect and a password update', async () => {
    await kms.send(new ConnectCustomKeyStoreCommand({ CustomKeyStoreId: storeId }));
    const failed = await settled(storeId);
    expect(failed).to.include({ ConnectionState: 'FAILED', ConnectionErrorCode: 'INVALID_CREDENTIALS' });
    // As on AWS: a FAILED store must be disconnected before it may connect again, or be renamed.
    expect((await expectKmsError(kms.send(new ConnectCustomKeyStoreCommand({ CustomKeyStoreId: storeId })))).name).to.equal('CustomKeyStoreInvalidStateException');
    const renameFailed = await expectKmsError(kms.send(new UpdateCustomKeyStoreCommand({ CustomKeyStoreId: storeId, NewCustomKeyStoreName: 'renamed-while-failed' })));
    expect(renameFailed.name).to.equal('CustomKeyStoreInvalidStateException');
    expect(renameFailed.message).to.equal(`Custom key store ${storeId} is FAILED; UpdateCustomKeyStore needs it CONNECTED or DISCONNECTED.`);
    await kms.send(new DisconnectCustomKeyStoreCommand({ CustomKeyStoreId: storeId }));
    expect((await stateOf(storeId)).ConnectionState).to.equal('DISCONNECTED');
    expect((await expectKmsError(kms.send(new DisconnectCustomKeyStoreCommand({ CustomKeyStoreId: storeId })))).name).to.equal('CustomKeyStoreInvalidStateException');
    await kms.send(new UpdateCustomKeyStoreCommand({ CustomKeyStoreId: storeId, KeyStorePassword: BACKEND.pin, NewCustomKeyStoreName: 'backend-1' }));
    await kms.send(new ConnectCustomKeyStoreCommand({ CustomKeyStoreId: storeId }));
    expect(await settled(storeId)).to.include({ ConnectionState: 'CONNECTED', CustomKeyStoreName: 'backend-1' });
    expect((await expectKmsError(kms.send(new UpdateCustomKeyStoreCommand({ CustomKeyStoreId: storeId, KeyStorePassword: 'another-pin' })))).name).to.equal('CustomKeyStoreInvalidStateException');
    // The name alone may change while CONNECTED.
    await kms.send(new UpdateCustomKeyStoreCommand({ CustomKeyStoreId: storeId, NewCustomKeyStoreName: 'backend-1b' }));
    expect((await stateOf(storeId)).CustomKeyStoreName).to.equal('backend-1b');
    expect((await expectKmsError(kms.send(new DeleteCustomKeyStoreCommand({ CustomKeyStoreId: storeId })))).name).to.equal('CustomKeyStoreInvalidStateException');

    // A backend whose token does not exist: CLUSTER_NOT_FOUND.
    const other = (await kms.send(new CreateCustomKeyStoreCommand({ CustomKeyStoreName: 'nowhere', CloudHsmClusterId: OTHER_CLUSTER, TrustAnchorCertificate: trustAnchor, KeyStorePassword: 'whatever1' }))).CustomKeyStoreId!;
    await kms.send(new ConnectCustomKeyStoreCommand({ CustomKeyStoreId: other }));
    expect(await settled(other)).to.include({ ConnectionState: 'FAILED', ConnectionErrorCode: 'CLUSTER_NOT_FOUND' });
    // Filters and pagination.
    const page1 = await kms.send(new DescribeCustomKeyStoresCommand({ Limit: 1 }));
    expect(page1.CustomKeyStores!.map((c) => c.CustomKeyStoreId)).to.deep.equal([storeId]);
    expect(page1.Truncated).to.equal(true);
    const page2 = await kms.send(new DescribeCustomKeyStoresCommand({ Limit: 1, Marker: page1.NextMarker }));
    expect(page2.CustomKeyStores!.map((c) => c.CustomKeyStoreId)).to.deep.equal([other]);
    expect(page2.Truncated).to.equal(false);
    expect((await kms.send(new DescribeCustomKeyStoresCommand({ CustomKeyStoreName: 'nowhere' }))).CustomKeyStores![0].CustomKeyStoreId).to.equal(other);
    expect((await expectKmsError(kms.send(new DescribeCustomKeyStoresCommand({ CustomKeyStoreName: 'absent' })))).name).to.equal('CustomKeyStoreNotFoundException');
    await kms.send(new DisconnectCustomKeyStoreCommand({ CustomKeyStoreId: other }));
    await kms.send(new DeleteCustomKeyStoreCommand({ CustomKeyStoreId: other }));
    expect((await expectKmsError(kms.send(new DescribeCustomKeyStoresCommand({ CustomKeyStoreId: other })))).name).to.equal('CustomKeyStoreNotFoundException');
  });

  it('generates the key in the backend token and does every operation there', async () => {
    const custom = (await kms.send(new CreateKeyCommand({ CustomKeyStoreId: storeId, Origin: 'AWS_CLOUDHSM', Description: 'in the backend' }))).KeyMetadata!;
    expect(custom).to.include({ CustomKeyStoreId: storeId, CloudHsmClusterId: CLUSTER, Origin: 'AWS_CLOUDHSM', KeyState: 'Enabled', KeySpec: 'SYMMETRIC_DEFAULT' });
    // AWS: CurrentKeyMaterialId is present for symmetric keys of origin AWS_KMS or EXTERNAL only.
    expect(custom).not.to.have.property('CurrentKeyMaterialId');
    expect((await kms.send(new DescribeKeyCommand({ KeyId: custom.KeyId }))).KeyMetadata).not.to.have.property('CurrentKeyMaterialId');
    const main = (await kms.send(new CreateKeyCommand({}))).KeyMetadata!;

    // Proven through PKCS#11: each token holds exactly its own key.
    const inBackend = listTokenObjects(server.dataDir, BACKEND).map((o) => o.label);
    const inMain = listTokenObjects(server.dataDir).map((o) => o.label);
    expect(inBackend).to.include(`p11kms:${custom.KeyId}:v1`);
    expect(inBackend).not.to.include(`p11kms:${main.KeyId}:v1`);
    expect(inMain).to.include(`p11kms:${main.KeyId}:v1`);
    expect(inMain).not.to.include(`p11kms:${custom.KeyId}:v1`);
    const backendObject = listTokenObjects(server.dataDir, BACKEND).find((o) => o.label === `p11kms:${custom.KeyId}:v1`)!;
    expect(backendObject).to.include({ sensitive: true, extractable: false, neverExtractable: true });

    const plaintext = Buffer.from('kept by the backend token');
    const sealed = await kms.send(new EncryptCommand({ KeyId: custom.KeyId, Plaintext: plaintext, EncryptionContext: { app: 'cks' } }));
    const opened = await kms.send(new DecryptCommand({ CiphertextBlob: sealed.CiphertextBlob, EncryptionContext: { app: 'cks' } }));
    expect(Buffer.from(opened.Plaintext!).equals(plaintext)).to.equal(true);
    expect(opened.KeyId).to.equal(custom.Arn);

    const dataKey = await kms.send(new GenerateDataKeyCommand({ KeyId: custom.KeyId, KeySpec: 'AES_256' }));
    expect(Buffer.from((await kms.send(new DecryptCommand({ CiphertextBlob: dataKey.CiphertextBlob }))).Plaintext!).equals(Buffer.from(dataKey.Plaintext!))).to.equal(true);
    // A data key made inside the backend token moves to a main-token key and back.
    const hidden = await kms.send(new GenerateDataKeyWithoutPlaintextCommand({ KeyId: custom.KeyId, NumberOfBytes: 32 }));
    const moved = await kms.send(new ReEncryptCommand({ CiphertextBlob: hidden.CiphertextBlob, DestinationKeyId: main.KeyId }));
    const back = await kms.send(new ReEncryptCommand({ CiphertextBlob: moved.CiphertextBlob, DestinationKeyId: custom.KeyId }));
    const viaMain = await kms.send(new DecryptCommand({ CiphertextBlob: moved.CiphertextBlob }));
    const viaBackend = await kms.send(new DecryptCommand({ CiphertextBlob: back.CiphertextBlob }));
    expect(Buffer.from(viaMain.Plaintext!).equals(Buffer.from(viaBackend.Plaintext!))).to.equal(true);
    expect((await kms.send(new GenerateRandomCommand({ NumberOfBytes: 16, CustomKeyStoreId: storeId }))).Plaintext).to.have.length(16);
    expect((await expectKmsError(kms.send(new EnableKeyRotationCommand({ KeyId: custom.KeyId })))).name).to.equal('UnsupportedOperationException');
    expect((await expectKmsError(kms.send(new CreateKeyCommand({ CustomKeyStoreId: storeId, Origin: 'AWS_CLOUDHSM', KeySpec: 'RSA_2048', KeyUsage: 'SIGN_VERIFY' })))).name).to.equal('UnsupportedOperationException');
    expect((await expectKmsError(kms.send(new DeleteCustomKeyStoreCommand({ CustomKeyStoreId: storeId })))).name).to.equal('CustomKeyStoreInvalidStateException');

    // Disconnected: the key is Unavailable and unusable, as on AWS.
    await kms.send(new DisconnectCustomKeyStoreCommand({ CustomKeyStoreId: storeId }));
    expect((await kms.send(new DescribeKeyCommand({ KeyId: custom.KeyId }))).KeyMetadata).to.include({ KeyState: 'Unavailable', Enabled: false });
    const refused = await expectKmsError(kms.send(new DecryptCommand({ CiphertextBlob: sealed.CiphertextBlob, EncryptionContext: { app: 'cks' } })));
    expect(refused.name).to.equal('KMSInvalidStateException');
    expect((await expectKmsError(kms.send(new GenerateRandomCommand({ NumberOfBytes: 16, CustomKeyStoreId: storeId })))).name).to.equal('CustomKeyStoreInvalidStateException');
    expect((await expectKmsError(kms.send(new DeleteCustomKeyStoreCommand({ CustomKeyStoreId: storeId })))).name).to.equal('CustomKeyStoreHasCMKsException');

    // A connected store is connected again after a restart, and its keys work.
    await kms.send(new ConnectCustomKeyStoreCommand({ CustomKeyStoreId: storeId }));
    expect((await settled(storeId)).ConnectionState).to.equal('CONNECTED');
    await suite.restart();
    expect((await settled(storeId)).ConnectionState).to.equal('CONNECTED');
    const again = await kms.send(new DecryptCommand({ CiphertextBlob: sealed.CiphertextBlob, EncryptionContext: { app: 'cks' } }));
    expect(Buffer.from(again.Plaintext!).equals(plaintext)).to.equal(true);
    await kms.send(new ScheduleKeyDeletionCommand({ KeyId: custom.KeyId, PendingWindowInDays: 7 }));
  });

  it('when the main token re-initialises the PKCS#11 library both tokens share, the backend token serves on at once: one re-initialisation, no failed backend call, every ciphertext decrypts', async () => {
    const custom = (await kms.send(new CreateKeyCommand({ CustomKeyStoreId: storeId, Origin: 'AWS_CLOUDHSM' }))).KeyMetadata!.KeyId!;
    const main = (await kms.send(new CreateKeyCommand({}))).KeyMetadata!.KeyId!;
    const encrypt = async (keyId: string, text: string) => ({ text, blob: (await kms.send(new EncryptCommand({ KeyId: keyId, Plaintext: Buffer.from(text) }))).CiphertextBlob! });
    // Both tokens hold sessions and object handles of the library's current instance.
    const sealed = await Promise.all([encrypt(custom, 'backend, before'), encrypt(main, 'main, before')]);
    const from = server.stderr().length;
    const logSince = () => server.stderr().slice(from);
    const waitFor = async (pattern: RegExp) => {
      while (!pattern.test(logSince())) await new Promise((r) => setTimeout(r, 20));
    };
    inject([{ call: 'C_EncryptAsync', ckr: 'CKR_DEVICE_ERROR' }]);
    sealed.push(await encrypt(main, 'main, across the re-initialisation'));
    inject([]);
    await waitFor(/token module re-initialised/);
    sealed.push(...(await Promise.all([1, 2, 3, 4].map((n) => encrypt(custom, `backend, after ${n}`)))));
    for (const { text, blob } of sealed) {
      expect(Buffer.from((await kms.send(new DecryptCommand({ CiphertextBlob: blob }))).Plaintext!).toString(), text).to.equal(text);
    }
    // A marker in the log: everything the calls above logged was written before it.
    inject([{ call: 'C_EncryptInit', ckr: 'CKR_KEY_HANDLE_INVALID' }]);
    await encrypt(main, 'marker');
    inject([]);
    await waitFor(/"recovery":"handles"/);
    const during = logSince().slice(0, logSince().search(/"recovery":"handles"/));
    expect(during.match(/token module re-initialised/g), 'module re-initialisations').to.have.length(1);
    expect(during.match(/token call failed/g), 'failed token calls (the injected device error only)').to.have.length(1);
  });

  it('kill -9 after the backend token made a key and before the store recorded it: the store, connected again after the restart, destroys that object; missing material is reported', async () => {
    /** Store and backend token compared through PKCS#11 from another process: what does not agree. */
    const backendFindings = () => {
      const store = readStore(server.dataDir);
      return custodyFindings({ ...store, keys: store.keys.filter((k) => k.customKeyStoreId === storeId) }, listTokenObjects(server.dataDir, BACKEND));
    };
    const kept = (await kms.send(new CreateKeyCommand({ CustomKeyStoreId: storeId, Origin: 'AWS_CLOUDHSM' }))).KeyMetadata!.KeyId!;
    const sealed = (await kms.send(new EncryptCommand({ KeyId: kept, Plaintext: Buffer.from('acknowledged before the crash') }))).CiphertextBlob!;
    const lost = (await kms.send(new CreateKeyCommand({ CustomKeyStoreId: storeId, Origin: 'AWS_CLOUDHSM' }))).KeyMetadata!.KeyId!;
    expect(backendFindings()).to.deep.equal([]);

    // The crash point: the backend token has made the key, the store has not recorded it.
    inject([{ call: 'C_GenerateKeyAsync', hang: true, after: true }]);
    const crashed = kms.send(new CreateKeyCommand({ CustomKeyStoreId: storeId, Origin: 'AWS_CLOUDHSM' })).then(() => 'answered', () => 'cut');
    await server.waitForLog(/"call":"C_GenerateKeyAsync","hang":true,"after":true/);
    await server.kill();
    inject([]);
    expect(await crashed).to.equal('cut');
    const orphan = backendFindings().filter((f) => f.startsWith('orphan token object'));
    expect(orphan, 'the crash left one object no key names').to.have.length(1);
    // Material that went from the backend token while the service was down.
    destroyTokenObject(server.dataDir, `p11kms:${lost}:v1`, BACKEND);

    // Sweeps every second from here on (the next test); the store's reconnection reconciles first.
    await suite.restart({ sweepIntervalSeconds: 1 });
    expect((await settled(storeId)).ConnectionState).to.equal('CONNECTED');
    const findings = backendFindings();
    expect(findings.filter((f) => !f.startsWith(`missing from the token: p11kms:${lost}:v1 `))).to.deep.equal([]);
    expect(findings).to.have.length(1);
    const opened = await kms.send(new DecryptCommand({ CiphertextBlob: sealed }));
    expect(Buffer.from(opened.Plaintext!).toString()).to.equal('acknowledged before the crash');
    for (const key of readStore(server.dataDir).keys.filter((k) => k.customKeyStoreId === storeId && k.keyState === 'Enabled' && k.keyId !== lost)) {
      await kms.send(new EncryptCommand({ KeyId: key.keyId, Plaintext: Buffer.from('still works') }));
    }

    const health = (await (await fetch(`${server.endpoint}/health`)).json()) as { missingMaterial: number };
    expect(health.missingMaterial).to.equal(1);
    await server.waitForLog(new RegExp(`"customKeyStoreId":"${storeId}","keyId":"${lost}"[^\\n]*key material is missing from the token`));
    expect((await expectKmsError(kms.send(new EncryptCommand({ KeyId: lost, Plaintext: Buffer.from('x') })))).name).to.equal('KeyUnavailableException');
  });

  it('a key deleted while its store is not connected: the store keeps the removal; once connected, a material sweep destroys the object the connect-time reconciliation could not', async () => {
    const keyId = (await kms.send(new CreateKeyCommand({ CustomKeyStoreId: storeId, Origin: 'AWS_CLOUDHSM' }))).KeyMetadata!.KeyId!;
    await kms.send(new ScheduleKeyDeletionCommand({ KeyId: keyId, PendingWindowInDays: 7 }));
    // Eight days later the start-up sweep deletes the key before the store reconnects.
    inject([{ call: 'C_DestroyObject', ckr: 'CKR_DEVICE_ERROR', times: 1_000_000 }]);
    await suite.restart({ clockOffsetSeconds: 8 * 86_400 });
    await server.waitForLog(new RegExp(`"keyId":"${keyId}","customKeyStoreId":"${storeId}"[^\\n]*its custom key store is disconnected`));
    await server.waitForLog(new RegExp(`"customKeyStoreId":"${storeId}"[^\\n]*"msg":"reconciliation of a backend token failed"`), 30_000);
    expect((await settled(storeId)).ConnectionState).to.equal('CONNECTED');
    expect(listTokenObjects(server.dataDir, BACKEND).map((o) => o.label)).to.include(`p11kms:${keyId}:v1`);
    inject([]);
    await server.waitForLog(new RegExp(`"customKeyStoreId":"${storeId}","object":"${keyId}:v1","msg":"destroyed a token object no key refers to"`), 30_000);
    expect(listTokenObjects(server.dataDir, BACKEND).map((o) => o.label)).not.to.include(`p11kms:${keyId}:v1`);
  });

  it('never writes the PIN to the store, the trail or the log', () => {
    const files = [path.join(server.dataDir, 'metadata.json'), ...fs.readdirSync(path.join(server.dataDir, 'audit')).filter((f) => f.endsWith('.jsonl')).map((f) => path.join(server.dataDir, 'audit', f))];
    for (const file of files) {
      const text = fs.readFileSync(file, 'utf8');
      expect(text, file).not.to.include(BACKEND.pin);
      expect(text, file).not.to.include('wrong-pin-1');
    }
    expect(server.stderr()).not.to.include(BACKEND.pin);
    expect(fs.readFileSync(path.join(server.dataDir, 'audit', fs.readdirSync(path.join(server.dataDir, 'audit')).find((f) => f.endsWith('.jsonl'))!), 'utf8')).to.include('CreateCustomKeyStore');
  });

  it('keys deleted while their store is disconnected, then the store deleted: a store created later on the same cluster destroys their material when it connects (and the removals end)', async () => {
    // Nothing names this material but the removals the deletions left, and they name a store
    // that no longer exists: without them the material would be kept as a key no store knows.
    kms = server.client({ clockOffsetMs: 8 * 86_400_000 });
    await kms.send(new DisconnectCustomKeyStoreCommand({ CustomKeyStoreId: storeId }));
    const keys = readStore(server.dataDir).keys.filter((k) => k.customKeyStoreId === storeId);
    for (const key of keys.filter((k) => k.keyState !== 'PendingDeletion')) await kms.send(new ScheduleKeyDeletionCommand({ KeyId: key.keyId, PendingWindowInDays: 7 }));
    expect(listTokenObjects(server.dataDir, BACKEND).filter((o) => o.label.startsWith('p11kms:'))).not.to.deep.equal([]);
    await suite.restart({ clockOffsetSeconds: 20 * 86_400 });
    expect(readStore(server.dataDir).keys.filter((k) => k.customKeyStoreId === storeId)).to.deep.equal([]);
    await kms.send(new DeleteCustomKeyStoreCommand({ CustomKeyStoreId: storeId }));

    const successor = (await kms.send(new CreateCustomKeyStoreCommand({ CustomKeyStoreName: 'successor', CloudHsmClusterId: CLUSTER, TrustAnchorCertificate: trustAnchor, KeyStorePassword: BACKEND.pin }))).CustomKeyStoreId!;
    await kms.send(new ConnectCustomKeyStoreCommand({ CustomKeyStoreId: successor }));
    expect((await settled(successor)).ConnectionState).to.equal('CONNECTED');
    expect(server.stderr()).not.to.match(new RegExp(`"customKeyStoreId":"${successor}"[^\\n]*kept token objects no key refers to`));
    expect(listTokenObjects(server.dataDir, BACKEND).filter((o) => o.label.startsWith('p11kms:'))).to.deep.equal([]);
    expect(readStore(server.dataDir).intents).to.deep.equal([]);
  });
});

/** A self-signed certificate for the TrustAnchorCertificate member (any X.509 PEM is accepted). */
function makeCertificate(): string {
  const pem = fs.readFileSync(path.join(ROOT, 'test', 'fixtures', 'trust-anchor.pem'), 'utf8');
  return pem.trim();
}
