import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import {
  ConnectCustomKeyStoreCommand,
  CreateAliasCommand,
  CreateCustomKeyStoreCommand,
  CreateGrantCommand,
  CreateKeyCommand,
  DecryptCommand,
  DeleteCustomKeyStoreCommand,
  DescribeCustomKeyStoresCommand,
  DescribeKeyCommand,
  DisableKeyCommand,
  DisconnectCustomKeyStoreCommand,
  EnableKeyCommand,
  EncryptCommand,
  ListKeyRotationsCommand,
  ListKeysCommand,
  ListResourceTagsCommand,
  RevokeGrantCommand,
  RotateKeyOnDemandCommand,
  TagResourceCommand,
} from '@aws-sdk/client-kms';
import { expect } from 'chai';
import { freshDatabaseUrl } from '../support/postgres';
import { expectKmsError, type ServerOptions, TestServer } from '../support/server';
import { initSecondToken } from '../support/token-tool';

const MAIN = path.resolve(__dirname, '..', '..', 'src', 'main.js');
const ROOT_DIR = path.resolve(__dirname, '..', '..', '..');
/** Custom key stores (AWS_CLOUDHSM): one backend token, under several cluster ids (a cluster id serves one store). */
const BACKEND = { label: 'p11kms-backend', pin: 'backend-pin-7' };
const CLUSTERS = ['cluster-sharedbackend', ...['A', 'B', 'C', 'D', 'E', 'F'].map((r) => `cluster-racebackend${r}`)];
const RACE_ROUNDS = CLUSTERS.length - 1;
const ACCOUNT = '111122223333';
const ROOT = { accessKeyId: 'AKIAADMIN00000000001', secretAccessKey: 'admin-secret', accountId: ACCOUNT, principalArn: `arn:aws:iam::${ACCOUNT}:user/admin` };
/** Only the admin may use the keys by policy: the app only through grants. */
const POLICY = JSON.stringify({ Version: '2012-10-17', Statement: [{ Effect: 'Allow', Principal: { AWS: `arn:aws:iam::${ACCOUNT}:user/admin` }, Action: 'kms:*', Resource: '*' }] });
const APP = { accessKeyId: 'AKIAAPP0000000000001', secretAccessKey: 'app-secret', accountId: ACCOUNT, principalArn: `arn:aws:iam::${ACCOUNT}:user/app` };

function writeCredentials(): string {
  const file = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'p11kms-cluster-cred-')), 'credentials.json');
  fs.writeFileSync(
    file,
    JSON.stringify({
      accessKeys: [ROOT, APP],
      identityPolicies: { [ROOT.principalArn]: { Version: '2012-10-17', Statement: [{ Effect: 'Allow', Action: 'kms:*', Resource: '*' }] } },
    }),
  );
  return file;
}

/** Polls `check` until it holds (the event), counting tries rather than time. */
async function eventually(what: string, check: () => Promise<boolean>, tries = 400): Promise<void> {
  for (let i = 0; i < tries; i++) {
    if (await check()) return;
    await new Promise((r) => setTimeout(r, 10));
  }
  throw new Error(`${what} never happened`);
}

const refused = (p: Promise<unknown>) => p.then(() => false, () => true);

/**
 * Two (and for a while three) p11kms processes on one PostgreSQL database and one SoftHSM2
 * token, used through the AWS SDK exactly as a user would, in strict mode.
 */
describe('cluster: several p11kms processes on one PostgreSQL and one token', function () {
  this.timeout(120_000);
  let url: string;
  let dataDir: string;
  let base: ServerOptions;
  let a: TestServer;
  let b: TestServer;
  const root = (s: TestServer) => s.client({ accessKeyId: ROOT.accessKeyId, secretAccessKey: ROOT.secretAccessKey });
  const app = (s: TestServer) => s.client({ accessKeyId: APP.accessKeyId, secretAccessKey: APP.secretAccessKey });

  before(async () => {
    url = await freshDatabaseUrl();
    dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'p11kms-cluster-'));
    initSecondToken(dataDir, path.join(ROOT_DIR, 'softhsm.conf'), BACKEND);
    const backendProfile = path.join(ROOT_DIR, 'native-config', 'softhsm2-backend.json');
    base = {
      dataDir,
      auth: 'strict',
      credentialsFile: writeCredentials(),
      env: { P11KMS_STORE_URL: url, P11KMS_TOKEN_BACKENDS: CLUSTERS.map((c) => `${c}=${backendProfile}`).join(',') },
    };
    // Started together: token initialisation and login are serialised by the token lock.
    [a, b] = await Promise.all([TestServer.start(base), TestServer.start(base)]);
  });

  after(async () => {
    await Promise.all([a?.stop(), b?.stop()]);
  });

  it('a key, alias and grant made through one node are usable through the other as soon as the call returned', async () => {
    const { KeyMetadata } = await root(a).send(new CreateKeyCommand({ Policy: POLICY }));
    const keyId = KeyMetadata!.KeyId!;
    await root(a).send(new CreateAliasCommand({ AliasName: 'alias/cluster-app', TargetKeyId: keyId }));
    const blob = (await root(b).send(new EncryptCommand({ KeyId: 'alias/cluster-app', Plaintext: Buffer.from('hello') }))).CiphertextBlob!;
    expect(Buffer.from((await root(a).send(new DecryptCommand({ CiphertextBlob: blob }))).Plaintext!).toString()).to.equal('hello');

    expect(await refused(app(b).send(new EncryptCommand({ KeyId: keyId, Plaintext: Buffer.from('x') })))).to.equal(true);
    await root(a).send(new CreateGrantCommand({ KeyId: keyId, GranteePrincipal: APP.principalArn, Operations: ['Encrypt', 'Decrypt'] }));
    await app(b).send(new EncryptCommand({ KeyId: keyId, Plaintext: Buffer.from('x') }));
  });

  it('rights taken away through one node are refused by the other (DisableKey, RevokeGrant), and how long it took is measured', async () => {
    const { KeyMetadata } = await root(a).send(new CreateKeyCommand({ Policy: POLICY }));
    const keyId = KeyMetadata!.KeyId!;
    const { GrantId } = await root(a).send(new CreateGrantCommand({ KeyId: keyId, GranteePrincipal: APP.principalArn, Operations: ['Encrypt'] }));
    // Warm node B's cache with the key and its grants, so the change must reach it.
    await app(b).send(new EncryptCommand({ KeyId: keyId, Plaintext: Buffer.from('x') }));

    await root(a).send(new RevokeGrantCommand({ KeyId: keyId, GrantId }));
    let started = Date.now();
    await eventually('node B refusing the revoked grant', () => refused(app(b).send(new EncryptCommand({ KeyId: keyId, Plaintext: Buffer.from('x') }))));
    const revokeMs = Date.now() - started;

    await root(b).send(new EncryptCommand({ KeyId: keyId, Plaintext: Buffer.from('x') }));
    await root(a).send(new DisableKeyCommand({ KeyId: keyId }));
    started = Date.now();
    const err = await (async () => {
      for (let i = 0; i < 400; i++) {
        const e = await root(b)
          .send(new EncryptCommand({ KeyId: keyId, Plaintext: Buffer.from('x') }))
          .then(() => undefined, (x: Error) => x);
        if (e) return e;
        await new Promise((r) => setTimeout(r, 10));
      }
      throw new Error('node B never refused the disabled key');
    })();
    const disableMs = Date.now() - started;
    expect(err.name).to.equal('DisabledException');
    console.log(`      measured: revoked grant refused by the other node after ${revokeMs} ms, disabled key after ${disableMs} ms`);

    // And rights given back are honoured at once (a refusal gets a second look at committed state).
    await root(a).send(new EnableKeyCommand({ KeyId: keyId }));
    await root(b).send(new EncryptCommand({ KeyId: keyId, Plaintext: Buffer.from('x') }));
  });

  it('two nodes racing on one alias name: exactly one CreateAlias succeeds, the other gets AlreadyExistsException', async () => {
    const { KeyMetadata } = await root(a).send(new CreateKeyCommand({ Policy: POLICY }));
    for (let round = 0; round < 5; round++) {
      const name = `alias/race-${round}`;
      const results = await Promise.allSettled([a, b, a, b].map((s) => root(s).send(new CreateAliasCommand({ AliasName: name, TargetKeyId: KeyMetadata!.KeyId! }))));
      expect(results.filter((r) => r.status === 'fulfilled'), name).to.have.length(1);
      for (const r of results) if (r.status === 'rejected') expect((r.reason as Error).name).to.equal('AlreadyExistsException');
    }
  });

  it('concurrent tag writes and rotations on one key through both nodes lose nothing', async () => {
    const { KeyMetadata } = await root(a).send(new CreateKeyCommand({ Policy: POLICY }));
    const keyId = KeyMetadata!.KeyId!;
    await Promise.all(
      Array.from({ length: 12 }, (_, i) => root(i % 2 ? a : b).send(new TagResourceCommand({ KeyId: keyId, Tags: [{ TagKey: `t${i}`, TagValue: String(i) }] }))),
    );
    const { Tags } = await root(b).send(new ListResourceTagsCommand({ KeyId: keyId }));
    expect(Tags!.map((t) => t.TagKey).sort()).to.deep.equal(Array.from({ length: 12 }, (_, i) => `t${i}`).sort());

    // One more than the on-demand limit, through both nodes: a serial order of the calls gives
    // 25 rotations and one LimitExceededException, never a ConflictException for a loser.
    const rotations = await Promise.allSettled(Array.from({ length: 26 }, (_, i) => root(i % 2 ? a : b).send(new RotateKeyOnDemandCommand({ KeyId: keyId }))));
    const outcomes = rotations.map((r) => (r.status === 'fulfilled' ? 'OK' : (r.reason as Error).name));
    expect(outcomes.filter((o) => o === 'OK'), outcomes.join(',')).to.have.length(25);
    expect(outcomes.filter((o) => o !== 'OK')).to.deep.equal(['LimitExceededException']);
    const { Rotations } = await root(a).send(new ListKeyRotationsCommand({ KeyId: keyId, Limit: 100 }));
    expect(Rotations, 'every acknowledged rotation is listed').to.have.length(25);
  });

  /** A new AWS_CLOUDHSM store, connected through node A and up on both nodes. */
  const connectedStore = async (name: string, clusterId: string): Promise<string> => {
    const trustAnchor = fs.readFileSync(path.join(ROOT_DIR, 'test', 'fixtures', 'trust-anchor.pem'), 'utf8').trim();
    const { CustomKeyStoreId } = await root(a).send(new CreateCustomKeyStoreCommand({ CustomKeyStoreName: name, CloudHsmClusterId: clusterId, TrustAnchorCertificate: trustAnchor, KeyStorePassword: BACKEND.pin }));
    const id = CustomKeyStoreId!;
    await root(a).send(new ConnectCustomKeyStoreCommand({ CustomKeyStoreId: id }));
    // Node B connects when it hears of the change, before any request about the store reaches it.
    await Promise.all([a, b].map((s) => s.waitForLog(new RegExp(`"customKeyStoreId":"${id}","state":"CONNECTED"`)).catch((e: Error) => { throw new Error(`${e.message}\n${s.stderr().split('\n').filter((l) => l.includes(id)).join('\n')}`); })));
    return id;
  };
  const connectionOn = async (s: TestServer, id: string) => (await root(s).send(new DescribeCustomKeyStoresCommand({ CustomKeyStoreId: id }))).CustomKeyStores![0].ConnectionState;
  const keyStateOn = async (s: TestServer, keyId: string) => (await root(s).send(new DescribeKeyCommand({ KeyId: keyId }))).KeyMetadata!.KeyState;

  it('a custom key store connected through one node serves on every node; a Disconnect through the other closes it on both', async () => {
    const id = await connectedStore('cluster-store', CLUSTERS[0]);
    expect([await connectionOn(a, id), await connectionOn(b, id)]).to.deep.equal(['CONNECTED', 'CONNECTED']);
    // Every request, whichever node and connection it reaches, can use the store.
    const keyIds = await Promise.all(
      Array.from({ length: 8 }, async (_, i) => {
        const [here, there] = i % 2 ? [a, b] : [b, a];
        const { KeyMetadata } = await root(here).send(new CreateKeyCommand({ CustomKeyStoreId: id, Origin: 'AWS_CLOUDHSM', Policy: POLICY }));
        const keyId = KeyMetadata!.KeyId!;
        expect(KeyMetadata).to.include({ CustomKeyStoreId: id, KeyState: 'Enabled' });
        expect(await keyStateOn(there, keyId)).to.equal('Enabled');
        const { CiphertextBlob } = await root(there).send(new EncryptCommand({ KeyId: keyId, Plaintext: Buffer.from(keyId) }));
        const { Plaintext } = await root(here).send(new DecryptCommand({ CiphertextBlob }));
        expect(Buffer.from(Plaintext!).toString()).to.equal(keyId);
        return keyId;
      }),
    );

    // Through node B, which did not serve the Connect: it closes its own connection at once, A when it hears of it.
    await root(b).send(new DisconnectCustomKeyStoreCommand({ CustomKeyStoreId: id }));
    await a.waitForLog(new RegExp(`"customKeyStoreId":"${id}","msg":"custom key store disconnected"`));
    for (const s of [a, b]) {
      expect(await connectionOn(s, id)).to.equal('DISCONNECTED');
      for (const keyId of keyIds.slice(0, 2)) {
        expect(await keyStateOn(s, keyId)).to.equal('Unavailable');
        expect((await expectKmsError(root(s).send(new EncryptCommand({ KeyId: keyId, Plaintext: Buffer.from('x') })))).name).to.equal('KMSInvalidStateException');
      }
    }
    // And connected again through B: A follows.
    await root(b).send(new ConnectCustomKeyStoreCommand({ CustomKeyStoreId: id }));
    await root(a).send(new EncryptCommand({ KeyId: keyIds[0], Plaintext: Buffer.from('again') }));
    expect(await connectionOn(a, id)).to.equal('CONNECTED');
  });

  it('CreateKey into a custom key store racing its Disconnect and DeleteCustomKeyStore through both nodes: a serial outcome, never a key naming a deleted store', async () => {
    const outcomes: string[] = [];
    for (let round = 0; round < RACE_ROUNDS; round++) {
      const id = await connectedStore(`race-${round}`, CLUSTERS[round + 1]);
      const creates = Promise.allSettled(Array.from({ length: 6 }, (_, i) => root(i % 2 ? a : b).send(new CreateKeyCommand({ CustomKeyStoreId: id, Origin: 'AWS_CLOUDHSM' }))));
      // A store is deleted only once disconnected (as on AWS): Deletes through B, from the moment B sees
      // the Disconnect (before that it refuses them: still connected), while the creations run on.
      const deletes = (async () => {
        const disconnected = root(a).send(new DisconnectCustomKeyStoreCommand({ CustomKeyStoreId: id }));
        const answers: Array<PromiseSettledResult<unknown>> = [];
        const deleteThrough = (s: TestServer) => root(s).send(new DeleteCustomKeyStoreCommand({ CustomKeyStoreId: id }));
        for (;;) {
          const [answer] = await Promise.allSettled([deleteThrough(b)]);
          answers.push(answer);
          if (answer.status === 'fulfilled' || (answer.reason as Error).name !== 'CustomKeyStoreInvalidStateException') break;
        }
        answers.push(...(await Promise.allSettled([a, b, a].map(deleteThrough))));
        await disconnected;
        return answers;
      })();
      const [created, deleted] = await Promise.all([creates, deletes]);
      const acknowledged = created.flatMap((r) => (r.status === 'fulfilled' ? [r.value.KeyMetadata!.KeyId!] : []));
      const refusals = (results: PromiseSettledResult<unknown>[]) => results.flatMap((r) => (r.status === 'rejected' ? [(r.reason as Error).name] : []));
      const deleteWon = deleted.some((r) => r.status === 'fulfilled');
      outcomes.push(`${deleteWon ? 'deleted' : 'kept'}/${acknowledged.length} keys`);
      const context = `round ${round}: keys ${JSON.stringify(created.map((r) => r.status === 'fulfilled' || (r.reason as Error).name))}, deletes ${JSON.stringify(deleted.map((r) => r.status === 'fulfilled' || (r.reason as Error).name))}`;
      if (deleteWon) {
        // Delete came first: no key may have been recorded in the store.
        expect(acknowledged, context).to.deep.equal([]);
        expect(deleted.filter((r) => r.status === 'fulfilled'), context).to.have.length(1);
        for (const name of refusals(deleted)) expect(['CustomKeyStoreInvalidStateException', 'CustomKeyStoreNotFoundException'], context).to.include(name);
        expect((await expectKmsError(root(b).send(new DescribeCustomKeyStoresCommand({ CustomKeyStoreId: id })))).name).to.equal('CustomKeyStoreNotFoundException');
      } else {
        expect(refusals(deleted), context).to.include('CustomKeyStoreHasCMKsException');
        for (const name of refusals(deleted)) expect(['CustomKeyStoreInvalidStateException', 'CustomKeyStoreHasCMKsException'], context).to.include(name);
        expect(await connectionOn(b, id)).to.equal('DISCONNECTED');
      }
      // CreateKey refusals are those of the serial orders: disconnected already, or deleted already.
      for (const name of refusals(created)) expect(['CustomKeyStoreInvalidStateException', 'CustomKeyStoreNotFoundException'], context).to.include(name);
      for (const keyId of acknowledged) {
        const { KeyMetadata } = await root(a).send(new DescribeKeyCommand({ KeyId: keyId }));
        expect(KeyMetadata!.CustomKeyStoreId, context).to.equal(id);
      }
    }
    // No key of the deployment names a store that no longer exists.
    const stores = new Set(((await root(a).send(new DescribeCustomKeyStoresCommand({}))).CustomKeyStores ?? []).map((c) => c.CustomKeyStoreId));
    const { Keys } = await root(a).send(new ListKeysCommand({ Limit: 1000 }));
    for (const { KeyId } of Keys!) {
      const { KeyMetadata } = await root(a).send(new DescribeKeyCommand({ KeyId }));
      if (KeyMetadata!.CustomKeyStoreId) expect(stores.has(KeyMetadata!.CustomKeyStoreId), `${KeyId} names ${KeyMetadata!.CustomKeyStoreId}`).to.equal(true);
    }
    console.log(`      rounds: ${outcomes.join(', ')}`);
  });

  it('kill -9 of one node under load: the others keep serving and nothing acknowledged is lost', async () => {
    const c = await TestServer.start(base);
    const acknowledged: Array<{ keyId: string; blob: Uint8Array }> = [];
    let failuresOnSurvivor = 0;
    let stop = false;
    const load = async (s: TestServer, survivor: boolean) => {
      while (!stop) {
        try {
          const { KeyMetadata } = await root(s).send(new CreateKeyCommand({ Policy: POLICY }));
          const keyId = KeyMetadata!.KeyId!;
          await root(s).send(new TagResourceCommand({ KeyId: keyId, Tags: [{ TagKey: 'acked', TagValue: 'yes' }] }));
          const { CiphertextBlob } = await root(s).send(new EncryptCommand({ KeyId: keyId, Plaintext: Buffer.from(keyId) }));
          acknowledged.push({ keyId, blob: CiphertextBlob! });
        } catch {
          if (survivor) failuresOnSurvivor++;
          else return;
        }
      }
    };
    const loads = [load(c, false), load(c, false), load(a, true)];
    await eventually('load through the node to be killed', async () => acknowledged.length >= 6, 2_000);
    await c.kill();
    const before = acknowledged.length;
    await eventually('the survivor serving after the kill', async () => acknowledged.length >= before + 3, 2_000);
    stop = true;
    await Promise.all(loads);
    expect(failuresOnSurvivor, 'requests to the surviving node failed').to.equal(0);
    for (const { keyId, blob } of acknowledged) {
      const { Plaintext } = await root(b).send(new DecryptCommand({ CiphertextBlob: blob }));
      expect(Buffer.from(Plaintext!).toString()).to.equal(keyId);
      const { Tags } = await root(b).send(new ListResourceTagsCommand({ KeyId: keyId }));
      expect(Tags).to.deep.equal([{ TagKey: 'acked', TagValue: 'yes' }]);
    }
  });

  it('audit verify checks every process chain of the deployment, audit query merges them in time order', async () => {
    const out = execFileSync(process.execPath, [MAIN, 'audit', 'verify', '--dir', path.join(dataDir, 'audit')], { encoding: 'utf8' });
    const chains = fs.readdirSync(path.join(dataDir, 'audit')).filter((d) => fs.statSync(path.join(dataDir, 'audit', d)).isDirectory());
    expect(chains.length, 'one chain per process').to.be.at.least(3);
    expect(out).to.match(new RegExp(`OK: ${chains.length} chains`));
    const rows = execFileSync(process.execPath, [MAIN, 'audit', 'query', '--dir', path.join(dataDir, 'audit'), '--json', '--event', 'CreateAlias'], { encoding: 'utf8' })
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as { eventTime: string; p11kmsProcess: string });
    expect(new Set(rows.map((r) => r.p11kmsProcess)).size, 'records of both nodes').to.equal(2);
    expect(rows.map((r) => r.eventTime)).to.deep.equal([...rows.map((r) => r.eventTime)].sort());
  });
});
