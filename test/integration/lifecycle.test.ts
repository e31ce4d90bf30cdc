import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import {
  CreateAliasCommand,
  CreateKeyCommand,
  DecryptCommand,
  DescribeKeyCommand,
  DisableKeyCommand,
  EncryptCommand,
  type KMSClient,
  ListAliasesCommand,
  ListKeysCommand,
  ScheduleKeyDeletionCommand,
} from '@aws-sdk/client-kms';
import { expect } from 'chai';
import { readStore } from '../support/custody-invariants';
import { freshDatabaseUrl } from '../support/postgres';
import { expectKmsError, TestServer } from '../support/server';
import type { FaultRule } from '../../src/custody/faults';
import { fillDisk, mountSmallDisk, unmountSmallDisk } from '../support/small-disk';
import { destroyTokenObject, listTokenObjects } from '../support/token-tool';

const DAY_S = 24 * 60 * 60;

async function allKeyIds(kms: KMSClient): Promise<string[]> {
  const ids: string[] = [];
  let marker: string | undefined;
  do {
    const page = await kms.send(new ListKeysCommand({ Marker: marker, Limit: 1000 }));
    ids.push(...(page.Keys ?? []).map((k) => k.KeyId!));
    marker = page.NextMarker;
  } while (marker);
  return ids;
}

function materialLabels(dataDir: string): string[] {
  return listTokenObjects(dataDir)
    .map((o) => o.label)
    .filter((l) => l.startsWith('p11kms:'))
    .sort();
}

/** A stopped server whose store and token hold one key, and a ciphertext of 'kept' under it. */
async function stoppedWithOneKey(): Promise<{ server: TestServer; keyId: string; CiphertextBlob: Uint8Array }> {
  const server = await TestServer.start();
  const { KeyMetadata } = await server.client().send(new CreateKeyCommand({}));
  const { CiphertextBlob } = await server.client().send(new EncryptCommand({ KeyId: KeyMetadata!.KeyId, Plaintext: Buffer.from('kept') }));
  await server.stop();
  return { server, keyId: KeyMetadata!.KeyId!, CiphertextBlob: CiphertextBlob! };
}

/** Why a start that should be refused was refused; undefined (the server stopped again) when it started. */
function refusalOf(start: Promise<TestServer>): Promise<Error | undefined> {
  return start.then(
    async (s) => {
      await s.stop();
      return undefined;
    },
    (err: Error) => err,
  );
}

/** Starts on `dataDir` once more: the 'kept' ciphertext of stoppedWithOneKey still decrypts. */
async function expectStillDecrypts(dataDir: string, CiphertextBlob: Uint8Array): Promise<void> {
  const restored = await TestServer.start({ dataDir });
  try {
    expect(Buffer.from((await restored.client().send(new DecryptCommand({ CiphertextBlob }))).Plaintext!).toString()).to.equal('kept');
  } finally {
    await restored.stop();
  }
}

describe('persistence and recovery', function () {
  this.timeout(90_000);

  it('keeps keys, states, aliases and ciphertexts across a restart', async () => {
    let server = await TestServer.start();
    try {
      let kms = server.client();
      const { KeyMetadata } = await kms.send(new CreateKeyCommand({ Description: 'survives restarts' }));
      const keyId = KeyMetadata!.KeyId!;
      await kms.send(new CreateAliasCommand({ AliasName: 'alias/persisted', TargetKeyId: keyId }));
      const { CiphertextBlob } = await kms.send(
        new EncryptCommand({ KeyId: 'alias/persisted', Plaintext: Buffer.from('still here'), EncryptionContext: { k: 'v' } }),
      );
      const { KeyMetadata: second } = await kms.send(new CreateKeyCommand({}));
      await kms.send(new DisableKeyCommand({ KeyId: second!.KeyId }));

      server = await server.restart();
      kms = server.client();
      const described = await kms.send(new DescribeKeyCommand({ KeyId: 'alias/persisted' }));
      expect(described.KeyMetadata!.KeyId).to.equal(keyId);
      expect(described.KeyMetadata!.Description).to.equal('survives restarts');
      expect(described.KeyMetadata!.CurrentKeyMaterialId).to.equal(KeyMetadata!.CurrentKeyMaterialId);
      const { Plaintext } = await kms.send(new DecryptCommand({ CiphertextBlob, EncryptionContext: { k: 'v' } }));
      expect(Buffer.from(Plaintext!).toString()).to.equal('still here');
      const disabled = await kms.send(new DescribeKeyCommand({ KeyId: second!.KeyId }));
      expect(disabled.KeyMetadata!.KeyState).to.equal('Disabled');
    } finally {
      await server.stop();
    }
  });

  for (const [store, env, journaling] of [
    ['', {}, false],
    // Every commit appended to the journal (the default does so from 1 MiB of metadata.json on).
    [', the store journaling', { P11KMS_STORE_JOURNAL_FROM_BYTES: '0' }, true],
  ] as const) {
    it(`survives kill -9 in the middle of a load${store}: store readable, every acknowledged alias there, store and token agree`, async () => {
      let server = await TestServer.start({ env });
      try {
        const kms = server.client();
        // Keep creating keys and aliases; kill the process once some have landed and more are in flight.
        const landed: string[] = [];
        const inFlight: Array<Promise<unknown>> = [];
        for (let i = 0; i < 60; i++) {
          inFlight.push(
            kms
              .send(new CreateKeyCommand({}))
              .then(({ KeyMetadata }) => kms.send(new CreateAliasCommand({ AliasName: `alias/load-${i}`, TargetKeyId: KeyMetadata!.KeyId })))
              .then(() => landed.push(`alias/load-${i}`))
              .catch(() => undefined),
          );
        }
        while (landed.length < 5) await new Promise((r) => setTimeout(r, 5));
        await server.kill();
        await Promise.all(inFlight);
        expect(landed.length, 'some requests were still in flight at the kill').to.be.lessThan(60);
        expect(readStore(server.dataDir).keys, 'the store files read whole after the crash').to.be.an('array');
        const journal = path.join(server.dataDir, 'metadata.journal');
        expect(fs.existsSync(journal) && fs.statSync(journal).size > 0, 'commits in the journal').to.equal(journaling);

        server = await TestServer.start({ dataDir: server.dataDir, env });
        const after = server.client();
        const ids = await allKeyIds(after);
        // Every listed key has exactly its material in the token, and nothing else is there.
        expect(materialLabels(server.dataDir)).to.deep.equal(ids.map((id) => `p11kms:${id}:v1`).sort());
        for (const id of ids) {
          await after.send(new EncryptCommand({ KeyId: id, Plaintext: Buffer.from('x') }));
        }
        const health = (await (await fetch(`${server.endpoint}/health`)).json()) as { missingMaterial: number };
        expect(health.missingMaterial).to.equal(0);
        const aliases = (await after.send(new ListAliasesCommand({ Limit: 100 }))).Aliases ?? [];
        for (const alias of aliases) expect(ids).to.include(alias.TargetKeyId);
        expect(aliases.map((a) => a.AliasName), 'every alias acknowledged before the kill').to.include.members(landed);
      } finally {
        await server.stop();
      }
    });
  }

  it('a store restored from an older backup than the token: keys made after it are kept and reported, not destroyed, and work again with the right store', async () => {
    const { server, keyId: older, CiphertextBlob: olderBlob } = await stoppedWithOneKey();
    const storeFile = path.join(server.dataDir, 'metadata.json');
    const backup = fs.readFileSync(storeFile);
    let current = await TestServer.start({ dataDir: server.dataDir });
    try {
      // A key made after the backup, and a ciphertext under it.
      const { KeyMetadata } = await current.client().send(new CreateKeyCommand({}));
      const newer = KeyMetadata!.KeyId!;
      const { CiphertextBlob } = await current.client().send(new EncryptCommand({ KeyId: newer, Plaintext: Buffer.from('made after the backup') }));
      await current.stop();
      const latest = fs.readFileSync(storeFile);

      // The operator restores the older metadata.json beside the current token.
      fs.writeFileSync(storeFile, backup);
      current = await TestServer.start({ dataDir: server.dataDir });
      await current.waitForLog(new RegExp(`"count":1,"objects":\\["${newer}:v1"\\],"msg":"kept token objects no key refers to`));
      expect(materialLabels(server.dataDir)).to.deep.equal([`p11kms:${older}:v1`, `p11kms:${newer}:v1`].sort());
      const health = (await (await fetch(`${current.endpoint}/health`)).json()) as { unknownTokenObjects: number; missingMaterial: number };
      expect([health.unknownTokenObjects, health.missingMaterial]).to.deep.equal([1, 0]);
      expect(Buffer.from((await current.client().send(new DecryptCommand({ CiphertextBlob: olderBlob }))).Plaintext!).toString()).to.equal('kept');
      await current.stop();

      // The right store comes back: the newer key's ciphertext decrypts.
      fs.writeFileSync(storeFile, latest);
      current = await TestServer.start({ dataDir: server.dataDir });
      expect(Buffer.from((await current.client().send(new DecryptCommand({ CiphertextBlob }))).Plaintext!).toString()).to.equal('made after the backup');
      expect(((await (await fetch(`${current.endpoint}/health`)).json()) as { unknownTokenObjects: number }).unknownTokenObjects).to.equal(0);
      await current.stop();

      // An operator who knows the newer key is garbage says so once: only then is it destroyed.
      fs.writeFileSync(storeFile, backup);
      current = await TestServer.start({ dataDir: server.dataDir, env: { P11KMS_UNKNOWN_TOKEN_OBJECTS: 'destroy' } });
      await current.waitForLog(new RegExp(`"object":"${newer}:v1","msg":"destroyed a token object no key refers to"`));
      expect(materialLabels(server.dataDir)).to.deep.equal([`p11kms:${older}:v1`]);
    } finally {
      await current.stop();
    }
  });

  it('a store restored from a snapshot taken while a key was being made: that key, finished in the newer store, is kept with the others, not destroyed as an unfinished creation', async () => {
    let server = await TestServer.start();
    const storeFile = path.join(server.dataDir, 'metadata.json');
    try {
      // An atomic snapshot of the running service's store (README, "Backup and restore") that
      // caught a CreateKey between its intent and its record: read until one holds an intent.
      let stop = false;
      let madeAfter = 0;
      let snapshot: string | undefined;
      const clients = Array.from({ length: 4 }, async () => {
        const kms = server.client();
        while (!stop) {
          await kms.send(new CreateKeyCommand({}));
          if (snapshot !== undefined && ++madeAfter >= 4) stop = true;
        }
      });
      for (let reads = 0; snapshot === undefined && reads < 1_000_000; reads++) {
        const text = fs.existsSync(storeFile) ? fs.readFileSync(storeFile, 'utf8') : '{}';
        if (((JSON.parse(text) as { intents?: unknown[] }).intents ?? []).length > 0) snapshot = text;
        else await new Promise((resolve) => setImmediate(resolve));
      }
      await Promise.all(clients);
      expect(snapshot, 'a snapshot caught a creation in flight').to.be.a('string');
      const inFlight = (JSON.parse(snapshot!) as { intents: Array<{ keyId: string }> }).intents.map((i) => i.keyId);
      const blobs = await Promise.all(inFlight.map(async (keyId) => (await server.client().send(new EncryptCommand({ KeyId: keyId, Plaintext: Buffer.from(keyId) }))).CiphertextBlob!));
      await server.stop();
      const latest = fs.readFileSync(storeFile);

      // The snapshot's store beside the current token: nothing of the token is destroyed.
      fs.writeFileSync(storeFile, snapshot!);
      server = await TestServer.start({ dataDir: server.dataDir });
      const before = materialLabels(server.dataDir);
      expect(server.stderr()).not.to.match(/destroyed a token object no key refers to/);
      for (const keyId of inFlight) expect(before, keyId).to.include(`p11kms:${keyId}:v1`);
      await server.stop();

      // The right store back: every key works, the one that was in flight too.
      fs.writeFileSync(storeFile, latest);
      server = await TestServer.start({ dataDir: server.dataDir });
      const health = (await (await fetch(`${server.endpoint}/health`)).json()) as { unknownTokenObjects: number; missingMaterial: number };
      expect([health.unknownTokenObjects, health.missingMaterial]).to.deep.equal([0, 0]);
      for (const [i, keyId] of inFlight.entries()) {
        expect(Buffer.from((await server.client().send(new DecryptCommand({ CiphertextBlob: blobs[i] }))).Plaintext!).toString()).to.equal(keyId);
      }
    } finally {
      await server.stop();
    }
  });

  it('a deletion whose token destroy fails (the last key): the store keeps the removal, and the next start destroys the object instead of refusing the store as empty', async () => {
    const faultFile = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'p11kms-faults-')), 'faults.json');
    const inject = (rules: FaultRule[]) => fs.writeFileSync(faultFile, JSON.stringify(rules));
    inject([]);
    const env = { NODE_ENV: 'test', P11KMS_TEST_FAULTS: faultFile };
    let server = await TestServer.start({ env });
    try {
      const { KeyMetadata } = await server.client().send(new CreateKeyCommand({}));
      const keyId = KeyMetadata!.KeyId!;
      await server.client().send(new ScheduleKeyDeletionCommand({ KeyId: keyId, PendingWindowInDays: 7 }));
      await server.stop();
      // Eight days later the start-up sweep deletes the key; the token fails to destroy its material.
      inject([{ call: 'C_DestroyObject', ckr: 'CKR_DEVICE_ERROR', times: 1000 }]);
      server = await server.restart({ clockOffsetSeconds: 8 * DAY_S });
      await server.waitForLog(/could not destroy unreferenced token objects; reconciliation will/);
      await server.stop();
      const store = JSON.parse(fs.readFileSync(path.join(server.dataDir, 'metadata.json'), 'utf8')) as { keys: unknown[]; intents: Array<{ keyId: string; purpose: string }> };
      expect(store.keys).to.deep.equal([]);
      expect(store.intents.map((i) => [i.keyId, i.purpose])).to.deep.equal([[keyId, 'removal']]);
      expect(materialLabels(server.dataDir)).to.deep.equal([`p11kms:${keyId}:v1`]);

      inject([]);
      server = await server.restart();
      await server.waitForLog(new RegExp(`"object":"${keyId}:v1","msg":"destroyed a token object no key refers to"`));
      expect(materialLabels(server.dataDir)).to.deep.equal([]);
      await server.stop();
      expect((JSON.parse(fs.readFileSync(path.join(server.dataDir, 'metadata.json'), 'utf8')) as { intents: unknown[] }).intents).to.deep.equal([]);
    } finally {
      await server.stop();
    }
  });

  it('reports key material missing from the token and fails its use with KeyUnavailableException', async () => {
    let server = await TestServer.start();
    try {
      const { KeyMetadata } = await server.client().send(new CreateKeyCommand({}));
      await server.stop();
      destroyTokenObject(server.dataDir, `p11kms:${KeyMetadata!.KeyId}:v1`);

      server = await TestServer.start({ dataDir: server.dataDir });
      const health = (await (await fetch(`${server.endpoint}/health`)).json()) as { missingMaterial: number };
      expect(health.missingMaterial).to.equal(1);
      await server.waitForLog(/key material is missing from the token/);
      const err = await expectKmsError(server.client().send(new EncryptCommand({ KeyId: KeyMetadata!.KeyId, Plaintext: Buffer.from('x') })));
      expect(err.name).to.equal('KeyUnavailableException');
      expect(err.$metadata?.httpStatusCode).to.equal(500);
      expect(err.message).not.to.match(/CKR_|pkcs/i);
    } finally {
      await server.stop();
    }
  });

  it('refuses a second process on the same data directory', async () => {
    const server = await TestServer.start();
    try {
      const second = await TestServer.start({ dataDir: server.dataDir }).then(
        (s) => s,
        (err: Error) => err,
      );
      expect(second).to.be.instanceOf(Error);
      expect((second as Error).message).to.contain('is in use by another p11kms process');
      // The first process is unaffected.
      await server.client().send(new CreateKeyCommand({}));
    } finally {
      await server.stop();
    }
  });

  it('refuses a second process while the first is paused (SIGSTOP), however long: the first keeps its store', async () => {
    const server = await TestServer.start();
    try {
      const kms = server.client();
      const { KeyMetadata } = await kms.send(new CreateKeyCommand({}));
      // A paused holder stops refreshing its lock, which then looks like a crashed one's.
      server.sendSignal('SIGSTOP');
      const second = await TestServer.start({ dataDir: server.dataDir }).then(
        async (s) => {
          await s.kill();
          return s;
        },
        (err: Error) => err,
      );
      server.sendSignal('SIGCONT');
      expect(second).to.be.instanceOf(Error);
      expect((second as Error).message).to.contain('is in use by another p11kms process');
      // The first process still holds its store and writes it.
      const { KeyMetadata: after } = await kms.send(new CreateKeyCommand({}));
      const written = JSON.parse(fs.readFileSync(path.join(server.dataDir, 'metadata.json'), 'utf8')) as { keys: Array<{ keyId: string }> };
      expect(written.keys.map((k) => k.keyId)).to.include.members([KeyMetadata!.KeyId, after!.KeyId]);
    } finally {
      server.sendSignal('SIGCONT');
      await server.stop();
    }
  });

  it('on a nearly full disk a store write is refused whole (KMSInternalException), never renamed over metadata.json cut short', async () => {
    const disk = mountSmallDisk();
    const dataDir = path.join(disk, 'data');
    const storeFile = path.join(dataDir, 'metadata.json');
    const filler = path.join(disk, 'filler');
    const server = await TestServer.start({ dataDir });
    try {
      const kms = server.client();
      for (let i = 0; i < 20; i++) await kms.send(new CreateKeyCommand({ Description: `${i} `.padEnd(4000, 'd') }));
      // Fill the disk, then free half the store's size: the next store write fits only in part
      // (write() writes what fits and reports that count; the next call fails with ENOSPC).
      fillDisk(filler);
      fs.truncateSync(filler, fs.statSync(filler).size - (fs.statSync(storeFile).size >> 1));
      const err = await expectKmsError(kms.send(new CreateKeyCommand({ Description: 'x'.repeat(4000) })));
      expect([err.name, err.$metadata?.httpStatusCode]).to.deep.equal(['KMSInternalException', 500]);
      expect((JSON.parse(fs.readFileSync(storeFile, 'utf8')) as { keys: unknown[] }).keys).to.have.length(20);
      expect(fs.readdirSync(dataDir).filter((f) => f.endsWith('.tmp'))).to.deep.equal([]);
      // Space returns: the audit trail that could not be written either is written again, without a restart.
      fs.rmSync(filler);
      await server.client().send(new CreateKeyCommand({ Description: 'after' }));
      expect((JSON.parse(fs.readFileSync(storeFile, 'utf8')) as { keys: unknown[] }).keys).to.have.length(21);
    } finally {
      await server.stop();
      unmountSmallDisk(disk);
    }
  });

  it('refuses to start on a store that records no key while the token holds key material, destroying nothing', async () => {
    const { server, keyId, CiphertextBlob } = await stoppedWithOneKey();
    const storeFile = path.join(server.dataDir, 'metadata.json');
    const wrongStores: Array<[string, () => Promise<TestServer>]> = [
      // An operator moved metadata.json away (or deleted it): the JSON store opens empty.
      ['metadata.json moved away', async () => {
        fs.renameSync(storeFile, `${storeFile}.moved`);
        try {
          return await TestServer.start({ dataDir: server.dataDir });
        } finally {
          fs.renameSync(`${storeFile}.moved`, storeFile);
        }
      }],
      // README's cluster commands start on PostgreSQL before `store migrate` fills it.
      ['a new PostgreSQL database', async () => TestServer.start({ dataDir: server.dataDir, env: { P11KMS_STORE_URL: await freshDatabaseUrl() } })],
    ];
    for (const [what, start] of wrongStores) {
      const refused = await refusalOf(start());
      expect(refused, `${what}: refused`).to.be.instanceOf(Error);
      expect(refused?.message, what).to.contain(`the metadata store holds no keys, but the token holds p11kms key objects (${keyId}:v1)`);
      expect(materialLabels(server.dataDir), what).to.deep.equal([`p11kms:${keyId}:v1`]);
    }
    await expectStillDecrypts(server.dataDir, CiphertextBlob);
  });

  it('refuses to start on a damaged metadata.json or last-usage.json, naming the file, and rewrites nothing', async () => {
    const { server, keyId, CiphertextBlob } = await stoppedWithOneKey();
    const storeFile = path.join(server.dataDir, 'metadata.json');
    const usageFile = path.join(server.dataDir, 'last-usage.json');
    const intact = fs.readFileSync(storeFile);
    const damages: Array<[string, string, string, RegExp]> = [
      ['metadata.json cut in half', storeFile, intact.subarray(0, intact.length >> 1).toString(), /metadata\.json is damaged: it is not valid JSON \(.*\)\. p11kms does not start on a damaged store/],
      ['metadata.json emptied', storeFile, '', /metadata\.json is damaged: it is not valid JSON/],
      ['metadata.json without its key list', storeFile, JSON.stringify({ format: 'p11kms-metadata', version: 1, aliases: [] }), /metadata\.json is damaged: its "keys" is not a list/],
      ['last-usage.json cut short', usageFile, '{"format":"p11kms-last', /last-usage\.json is damaged: it is not valid JSON/],
    ];
    for (const [what, file, content, refusal] of damages) {
      const before = fs.existsSync(file) ? fs.readFileSync(file) : undefined;
      fs.writeFileSync(file, content);
      const err = await refusalOf(TestServer.start({ dataDir: server.dataDir }));
      expect(err?.message, what).to.match(refusal);
      expect(fs.readFileSync(file, 'utf8'), `${what}: left as found`).to.equal(content);
      expect(materialLabels(server.dataDir), what).to.deep.equal([`p11kms:${keyId}:v1`]);
      if (before) fs.writeFileSync(file, before);
      else fs.rmSync(file);
    }
    await expectStillDecrypts(server.dataDir, CiphertextBlob);
  });
});

describe('scheduled key deletion', function () {
  this.timeout(60_000);

  it('deletes a due key at start-up: material destroyed in the token, metadata and aliases gone', async () => {
    let server = await TestServer.start();
    try {
      const kms = server.client();
      const { KeyMetadata: doomed } = await kms.send(new CreateKeyCommand({}));
      const { KeyMetadata: kept } = await kms.send(new CreateKeyCommand({}));
      await kms.send(new CreateAliasCommand({ AliasName: 'alias/doomed', TargetKeyId: doomed!.KeyId }));
      await kms.send(new ScheduleKeyDeletionCommand({ KeyId: doomed!.KeyId, PendingWindowInDays: 7 }));

      // Six days later the key is still there, pending deletion.
      server = await server.restart({ clockOffsetSeconds: 6 * DAY_S });
      let later = server.client({ clockOffsetMs: 6 * DAY_S * 1000 });
      expect((await later.send(new DescribeKeyCommand({ KeyId: doomed!.KeyId }))).KeyMetadata!.KeyState).to.equal('PendingDeletion');
      expect(materialLabels(server.dataDir)).to.include(`p11kms:${doomed!.KeyId}:v1`);

      // Eight days later it is gone, everywhere.
      server = await server.restart({ clockOffsetSeconds: 8 * DAY_S });
      later = server.client({ clockOffsetMs: 8 * DAY_S * 1000 });
      const err = await expectKmsError(later.send(new DescribeKeyCommand({ KeyId: doomed!.KeyId })));
      expect(err.name).to.equal('NotFoundException');
      expect(await allKeyIds(later)).to.deep.equal([kept!.KeyId]);
      expect((await later.send(new ListAliasesCommand({}))).Aliases ?? []).to.deep.equal([]);
      expect(materialLabels(server.dataDir)).to.deep.equal([`p11kms:${kept!.KeyId}:v1`]);
    } finally {
      await server.stop();
    }
  });
});
