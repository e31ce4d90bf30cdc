/**
 * A custom key store's SoftHSM2 backend token made while the service runs (softhsm2-util
 * --init-token, as README's custom key store example says): SoftHSM2 reads its slot list at
 * C_Initialize only, so ConnectCustomKeyStore used to answer CLUSTER_NOT_FOUND until a restart.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { expect } from 'chai';
import { ConnectCustomKeyStoreCommand, CreateCustomKeyStoreCommand, CreateKeyCommand, DecryptCommand, DescribeCustomKeyStoresCommand, DisconnectCustomKeyStoreCommand, EncryptCommand, type KMSClient } from '@aws-sdk/client-kms';
import { serverPerSuite, type TestServer } from '../support/server';
import { initSecondToken, listTokenObjects } from '../support/token-tool';

const ROOT = path.resolve(__dirname, '..', '..', '..');
const CLUSTER = 'cluster-softhsmbackend';
const MISSING_CLUSTER = 'cluster-missingbackend';
const BACKEND = { label: 'p11kms-backend', pin: 'backend-pin-7' };

describe('custom key stores: a backend token made while the service runs', function () {
  this.timeout(60_000);
  let server: TestServer;
  let kms: KMSClient;
  let dataDir: string;

  /** Connect is asynchronous (as on AWS): the attempt's end, by state. */
  const connected = async (id: string) => {
    await kms.send(new ConnectCustomKeyStoreCommand({ CustomKeyStoreId: id }));
    for (;;) {
      const entry = (await kms.send(new DescribeCustomKeyStoresCommand({ CustomKeyStoreId: id }))).CustomKeyStores![0];
      if (entry.ConnectionState !== 'CONNECTING') return entry;
      await new Promise((r) => setTimeout(r, 20));
    }
  };
  const rereads = () => (server.stderr().match(/re-initialising it to read its slots again/g) ?? []).length;

  serverPerSuite(
    () => {
      dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'p11kms-cks-later-'));
      const missingProfile = path.join(dataDir, 'missing-backend.json');
      fs.writeFileSync(missingProfile, JSON.stringify({ name: 'nowhere', module: '/usr/lib/softhsm/libsofthsm2.so', tokenLabel: 'no-such-token' }));
      return { dataDir, env: { P11KMS_TOKEN_BACKENDS: `${CLUSTER}=${path.join(ROOT, 'native-config', 'softhsm2-backend.json')},${MISSING_CLUSTER}=${missingProfile}` } };
    },
    (started, client) => {
      server = started;
      kms = client;
    },
  );

  it('ConnectCustomKeyStore finds it without a restart; the main token serves on; an absent token costs no re-initialisation', async () => {
    const trustAnchor = fs.readFileSync(path.join(ROOT, 'test', 'fixtures', 'trust-anchor.pem'), 'utf8').trim();
    const mainKey = (await kms.send(new CreateKeyCommand({}))).KeyMetadata!.KeyId!;
    const sealed = (await kms.send(new EncryptCommand({ KeyId: mainKey, Plaintext: Buffer.from('main token') }))).CiphertextBlob!;

    // A token nobody made: CLUSTER_NOT_FOUND, and the module is left alone.
    const nowhere = (await kms.send(new CreateCustomKeyStoreCommand({ CustomKeyStoreName: 'nowhere', CloudHsmClusterId: MISSING_CLUSTER, TrustAnchorCertificate: trustAnchor, KeyStorePassword: 'whatever1' }))).CustomKeyStoreId!;
    expect(await connected(nowhere)).to.include({ ConnectionState: 'FAILED', ConnectionErrorCode: 'CLUSTER_NOT_FOUND' });
    expect(rereads(), 'module re-initialisations for a token nobody made').to.equal(0);

    // The operator makes the backend token now, in the service's token directory.
    const storeId = (await kms.send(new CreateCustomKeyStoreCommand({ CustomKeyStoreName: 'backend', CloudHsmClusterId: CLUSTER, TrustAnchorCertificate: trustAnchor, KeyStorePassword: BACKEND.pin }))).CustomKeyStoreId!;
    initSecondToken(dataDir, path.join(ROOT, 'softhsm.conf'), BACKEND);
    const entry = await connected(storeId);
    expect(entry, JSON.stringify(entry)).to.include({ ConnectionState: 'CONNECTED' });
    expect(rereads(), 'module re-initialisations for the new token').to.equal(1);

    const storeKey = (await kms.send(new CreateKeyCommand({ CustomKeyStoreId: storeId, Origin: 'AWS_CLOUDHSM' }))).KeyMetadata!.KeyId!;
    const inStore = (await kms.send(new EncryptCommand({ KeyId: storeKey, Plaintext: Buffer.from('backend token') }))).CiphertextBlob!;
    expect(Buffer.from((await kms.send(new DecryptCommand({ CiphertextBlob: inStore }))).Plaintext!).toString()).to.equal('backend token');
    expect(listTokenObjects(dataDir, BACKEND).map((o) => o.label)).to.include(`p11kms:${storeKey}:v1`);
    expect(Buffer.from((await kms.send(new DecryptCommand({ CiphertextBlob: sealed }))).Plaintext!).toString()).to.equal('main token');

    // Connecting again after a disconnect finds the token at once.
    await kms.send(new DisconnectCustomKeyStoreCommand({ CustomKeyStoreId: storeId }));
    expect(await connected(storeId)).to.include({ ConnectionState: 'CONNECTED' });
    expect(rereads(), 'module re-initialisations in all').to.equal(1);
  });
});
