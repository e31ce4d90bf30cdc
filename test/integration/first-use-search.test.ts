import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { CreateKeyCommand, DecryptCommand, EncryptCommand } from '@aws-sdk/client-kms';
import { expect } from 'chai';
import type { FaultRule } from '../../src/custody/faults';
import { freshDatabaseUrl } from '../support/postgres';
import { TestServer } from '../support/server';

/**
 * A key made by one process of a cluster is first used by another, which has never seen its
 * token object and searches the token for it: C_FindObjects reads every object (SoftHSM2:
 * ~30 µs each, seconds with 100,000 keys). The search must not stall the other requests of
 * that process, so it runs off the event loop (profile searchesOffEventLoop). Here the search
 * is held (fault injection) for as long as the test likes: a search of any length.
 */
describe('a key\'s first use in a process that did not make it: the token search stalls no other request', function () {
  this.timeout(120_000);
  let a: TestServer | undefined;
  let b: TestServer | undefined;
  let faultFile: string;
  const inject = (rules: FaultRule[]) => fs.writeFileSync(faultFile, JSON.stringify(rules));

  before(async () => {
    const url = await freshDatabaseUrl();
    const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'p11kms-first-use-'));
    faultFile = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'p11kms-first-use-faults-')), 'faults.json');
    inject([]);
    // No sweep: its reconciliation listing would cache the new key's handle in B before its first use.
    const base = { dataDir, sweepIntervalSeconds: 3600, env: { P11KMS_STORE_URL: url } };
    [a, b] = await Promise.all([TestServer.start(base), TestServer.start({ ...base, env: { ...base.env, NODE_ENV: 'test', P11KMS_TEST_FAULTS: faultFile } })]);
  });

  after(async () => {
    await Promise.all([a?.stop(), b?.stop()]);
  });

  it('while B searches the token for a key A made, B answers Encrypt and Decrypt with a key it uses already; the first use then answers with the right key', async () => {
    const kmsA = a!.client();
    const kmsB = b!.client();
    const known = (await kmsB.send(new CreateKeyCommand({}))).KeyMetadata!.KeyId!;
    const fresh = (await kmsA.send(new CreateKeyCommand({}))).KeyMetadata!.KeyId!;
    inject([{ call: 'C_FindObjectsAsync', hold: true }]);
    let firstUseAnswered = false;
    const firstUse = kmsB.send(new EncryptCommand({ KeyId: fresh, Plaintext: Buffer.from('first use in B') })).finally(() => (firstUseAnswered = true));
    await b!.waitForLog(/"call":"C_FindObjectsAsync","hold":true/);
    for (let i = 0; i < 20; i++) {
      const text = `answered while B searches, ${i}`;
      const { CiphertextBlob } = await kmsB.send(new EncryptCommand({ KeyId: known, Plaintext: Buffer.from(text) }));
      expect(Buffer.from((await kmsB.send(new DecryptCommand({ CiphertextBlob }))).Plaintext!).toString()).to.equal(text);
    }
    expect(firstUseAnswered, 'the first use answered before its search was let go').to.equal(false);
    inject([]);
    const { CiphertextBlob, KeyId } = await firstUse;
    expect(KeyId).to.equal(`arn:aws:kms:us-east-1:${KeyId!.split(':')[4]}:key/${fresh}`);
    // A, which made the key, opens what B sealed with the object B found.
    expect(Buffer.from((await kmsA.send(new DecryptCommand({ CiphertextBlob }))).Plaintext!).toString()).to.equal('first use in B');
    // Found once: B's next use answers from its handle cache, with no search to hold.
    inject([{ call: 'C_FindObjectsAsync', hold: true }]);
    const { CiphertextBlob: again } = await kmsB.send(new EncryptCommand({ KeyId: fresh, Plaintext: Buffer.from('second use in B') }));
    expect(Buffer.from((await kmsA.send(new DecryptCommand({ CiphertextBlob: again }))).Plaintext!).toString()).to.equal('second use in B');
  });
});
