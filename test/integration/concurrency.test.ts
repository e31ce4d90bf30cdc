/**
 * Many requests at once against one real p11kms process (a pool of PKCS#11 sessions, one
 * metadata store with group commit), then a restart: nothing is lost, mixed up or refused.
 */
import { randomBytes } from 'node:crypto';
import { expect } from 'chai';
import {
  type AliasListEntry,
  CreateAliasCommand,
  CreateKeyCommand,
  DecryptCommand,
  DescribeKeyCommand,
  EncryptCommand,
  GenerateDataKeyCommand,
  GenerateDataKeyWithoutPlaintextCommand,
  type KeyMetadata,
  type KMSClient,
  ListAliasesCommand,
  ListKeysCommand,
  ReEncryptCommand,
  ScheduleKeyDeletionCommand,
  UpdateAliasCommand,
} from '@aws-sdk/client-kms';
import { serverPerSuite, type TestServer } from '../support/server';

interface Sealed {
  keyArn: string;
  plaintext: Buffer;
  context: Record<string, string>;
  blob: Uint8Array;
}

describe('concurrency', function () {
  this.timeout(60_000);
  let server: TestServer;
  let kms: KMSClient;
  let keys: KeyMetadata[] = [];
  /** Ciphertexts made during the suite; all must still decrypt after the restart. */
  const sealed: Sealed[] = [];
  const flipAlias = 'alias/flip';
  const raceAlias = 'alias/race';
  let raceWinner: string;
  let scheduledKey: KeyMetadata;
  let scheduledDeletionDate: number;

  async function listAllKeyIds(): Promise<string[]> {
    const ids: string[] = [];
    let marker: string | undefined;
    do {
      const page = await kms.send(new ListKeysCommand({ Marker: marker }));
      ids.push(...(page.Keys ?? []).map((k) => k.KeyId!));
      marker = page.Truncated ? page.NextMarker : undefined;
    } while (marker);
    return ids;
  }

  async function listAllAliases(): Promise<AliasListEntry[]> {
    const aliases: AliasListEntry[] = [];
    let marker: string | undefined;
    do {
      const page = await kms.send(new ListAliasesCommand({ Marker: marker }));
      aliases.push(...(page.Aliases ?? []));
      marker = page.Truncated ? page.NextMarker : undefined;
    } while (marker);
    return aliases;
  }

  /** Decrypts every sealed item in parallel; returns a description of each mismatch. */
  async function checkAllDecrypt(items: Sealed[]): Promise<string[]> {
    const results = await Promise.allSettled(
      items.map((s) => kms.send(new DecryptCommand({ CiphertextBlob: s.blob, EncryptionContext: s.context }))),
    );
    const problems: string[] = [];
    results.forEach((r, i) => {
      const item = items[i];
      if (r.status === 'rejected') problems.push(`#${i}: ${(r.reason as Error).name}: ${(r.reason as Error).message}`);
      else if (!Buffer.from(r.value.Plaintext!).equals(item.plaintext)) problems.push(`#${i}: wrong plaintext`);
      else if (r.value.KeyId !== item.keyArn) problems.push(`#${i}: KeyId ${r.value.KeyId}, expected ${item.keyArn}`);
    });
    return problems;
  }

  const suite = serverPerSuite({}, (started, client) => ([server, kms] = [started, client]));

  it('creates 20 keys in parallel: all distinct, all listed, all usable', async function () {
    keys = (await Promise.all(Array.from({ length: 20 }, (_, i) => kms.send(new CreateKeyCommand({ Description: `parallel ${i}` }))))).map(
      (r) => r.KeyMetadata!,
    );
    expect(new Set(keys.map((k) => k.KeyId)).size).to.equal(20);
    expect(new Set(keys.map((k) => k.Arn)).size).to.equal(20);
    expect(new Set(keys.map((k) => k.CurrentKeyMaterialId)).size).to.equal(20);
    expect(keys.map((k) => k.Description).sort()).to.deep.equal(Array.from({ length: 20 }, (_, i) => `parallel ${i}`).sort());

    const listed = await listAllKeyIds();
    expect(listed).to.have.members(keys.map((k) => k.KeyId!));

    const items = await Promise.all(
      keys.map(async (key) => {
        const plaintext = randomBytes(32);
        const context = { key: key.KeyId! };
        const enc = await kms.send(new EncryptCommand({ KeyId: key.KeyId, Plaintext: plaintext, EncryptionContext: context }));
        expect(enc.KeyId).to.equal(key.Arn);
        return { keyArn: key.Arn!, plaintext, context, blob: enc.CiphertextBlob! };
      }),
    );
    expect(await checkAllDecrypt(items)).to.deep.equal([]);
    sealed.push(...items);
  });

  it('runs 200 Encrypts in parallel across 4 keys; every ciphertext decrypts to its own plaintext', async function () {
    const four = keys.slice(0, 4);
    const jobs = Array.from({ length: 200 }, (_, i) => ({
      key: four[i % 4],
      plaintext: Buffer.concat([Buffer.from(`message ${i} `), randomBytes(1 + (i % 50))]),
      context: { n: String(i) },
    }));
    const results = await Promise.allSettled(
      jobs.map((j) => kms.send(new EncryptCommand({ KeyId: j.key.KeyId, Plaintext: j.plaintext, EncryptionContext: j.context }))),
    );
    const failures = results.flatMap((r, i) => (r.status === 'rejected' ? [`#${i}: ${(r.reason as Error).name}: ${(r.reason as Error).message}`] : []));
    expect(failures).to.deep.equal([]);
    const items: Sealed[] = results.map((r, i) => {
      const out = (r as PromiseFulfilledResult<{ KeyId?: string; CiphertextBlob?: Uint8Array }>).value;
      expect(out.KeyId, `#${i}`).to.equal(jobs[i].key.Arn);
      return { keyArn: jobs[i].key.Arn!, plaintext: jobs[i].plaintext, context: jobs[i].context, blob: out.CiphertextBlob! };
    });
    expect(new Set(items.map((s) => Buffer.from(s.blob).toString('base64'))).size).to.equal(200);
    expect(await checkAllDecrypt(items)).to.deep.equal([]);
    sealed.push(...items);
  });

  it('gives 300 parallel Encrypts of one plaintext under one key and context 300 different IVs, each decrypting', async function () {
    // IVs come from the token's RNG 64 at a time (iv-supply.ts): 300 cross several draws, so an IV
    // handed out twice at a draw's edge shows as two equal blobs (same key, context and plaintext).
    const key = keys[0];
    const plaintext = Buffer.from('the same plaintext, three hundred times');
    const context = { purpose: 'iv-uniqueness' };
    const blobs = await Promise.all(
      Array.from({ length: 300 }, async () => Buffer.from((await kms.send(new EncryptCommand({ KeyId: key.KeyId, Plaintext: plaintext, EncryptionContext: context }))).CiphertextBlob!)),
    );
    const ivs = blobs.map((b) => b.subarray(24, 36).toString('hex'));
    expect(new Set(ivs).size, 'distinct IVs').to.equal(300);
    expect(new Set(blobs.map((b) => b.toString('hex'))).size, 'distinct blobs').to.equal(300);
    expect(await checkAllDecrypt(blobs.map((blob) => ({ keyArn: key.Arn!, plaintext, context, blob })))).to.deep.equal([]);
  });

  it('serves parallel data key operations from the session pool without mixing them up', async function () {
    const [k1, k2] = [keys[6], keys[7]];
    const generated = await Promise.all(
      Array.from({ length: 40 }, (_, i) => kms.send(new GenerateDataKeyCommand({ KeyId: k1.KeyId, NumberOfBytes: 1 + i, EncryptionContext: { g: String(i) } }))),
    );
    const wrapped = await Promise.all(
      Array.from({ length: 40 }, (_, i) =>
        kms.send(new GenerateDataKeyWithoutPlaintextCommand({ KeyId: k1.KeyId, NumberOfBytes: 1 + i, EncryptionContext: { w: String(i) } })),
      ),
    );
    // Move all of them to k2 at once, then decrypt all of them at once.
    const moved = await Promise.all([
      ...generated.map((g, i) =>
        kms.send(new ReEncryptCommand({ CiphertextBlob: g.CiphertextBlob, SourceEncryptionContext: { g: String(i) }, DestinationKeyId: k2.KeyId })),
      ),
      ...wrapped.map((w, i) =>
        kms.send(new ReEncryptCommand({ CiphertextBlob: w.CiphertextBlob, SourceEncryptionContext: { w: String(i) }, DestinationKeyId: k2.KeyId })),
      ),
    ]);
    const decrypted = await Promise.all(moved.map((m) => kms.send(new DecryptCommand({ CiphertextBlob: m.CiphertextBlob }))));
    decrypted.forEach((d, i) => {
      expect(d.KeyId, `#${i}`).to.equal(k2.Arn);
      expect(d.Plaintext, `#${i}`).to.have.length(1 + (i % 40));
      if (i < 40) expect(Buffer.from(d.Plaintext!).equals(Buffer.from(generated[i].Plaintext!)), `GenerateDataKey #${i}`).to.equal(true);
    });
  });

  it('keeps every Encrypt working while 50 parallel UpdateAlias calls flip the alias between two keys', async function () {
    const [k1, k2] = [keys[4], keys[5]];
    await kms.send(new CreateAliasCommand({ AliasName: flipAlias, TargetKeyId: k1.KeyId }));
    const updates: Array<Promise<unknown>> = [];
    const encrypts: Array<Promise<Sealed>> = [];
    for (let i = 0; i < 50; i++) {
      updates.push(kms.send(new UpdateAliasCommand({ AliasName: flipAlias, TargetKeyId: (i % 2 === 0 ? k2 : k1).KeyId })));
      for (let j = 0; j < 2; j++) {
        const plaintext = Buffer.from(`via alias ${i}.${j}`);
        const context = { alias: `${i}.${j}` };
        encrypts.push(
          kms
            .send(new EncryptCommand({ KeyId: flipAlias, Plaintext: plaintext, EncryptionContext: context }))
            .then((out) => ({ keyArn: out.KeyId!, plaintext, context, blob: out.CiphertextBlob! })),
        );
      }
    }
    const [updateResults, encryptResults] = await Promise.all([Promise.allSettled(updates), Promise.allSettled(encrypts)]);
    const failed = [...updateResults, ...encryptResults].flatMap((r) =>
      r.status === 'rejected' ? [`${(r.reason as Error).name}: ${(r.reason as Error).message}`] : [],
    );
    expect(failed).to.deep.equal([]);
    const items = encryptResults.map((r) => (r as PromiseFulfilledResult<Sealed>).value);
    for (const item of items) expect(item.keyArn).to.be.oneOf([k1.Arn, k2.Arn]);
    // Each ciphertext names the key that made it.
    expect(await checkAllDecrypt(items)).to.deep.equal([]);
    sealed.push(...items);

    const flips = (await listAllAliases()).filter((a) => a.AliasName === flipAlias);
    expect(flips).to.have.length(1);
    expect(flips[0].TargetKeyId).to.be.oneOf([k1.KeyId, k2.KeyId]);
    // Resolution agrees with the listing.
    const described = await kms.send(new DescribeKeyCommand({ KeyId: flipAlias }));
    expect(described.KeyMetadata!.KeyId).to.equal(flips[0].TargetKeyId);
    const enc = await kms.send(new EncryptCommand({ KeyId: flipAlias, Plaintext: Buffer.from('after the storm') }));
    expect(enc.KeyId).to.equal(described.KeyMetadata!.Arn);

    // The last update wins.
    const last = flips[0].TargetKeyId === k1.KeyId ? k2 : k1;
    await kms.send(new UpdateAliasCommand({ AliasName: flipAlias, TargetKeyId: last.KeyId }));
    const after = (await listAllAliases()).filter((a) => a.AliasName === flipAlias);
    expect(after.map((a) => a.TargetKeyId)).to.deep.equal([last.KeyId]);
  });

  it('lets exactly one of 10 parallel CreateAlias calls of the same name succeed; the rest get AlreadyExistsException', async function () {
    const candidates = keys.slice(8, 18);
    const results = await Promise.allSettled(candidates.map((k) => kms.send(new CreateAliasCommand({ AliasName: raceAlias, TargetKeyId: k.KeyId }))));
    const winners = results.flatMap((r, i) => (r.status === 'fulfilled' ? [candidates[i]] : []));
    expect(winners, 'successful CreateAlias calls').to.have.length(1);
    for (const r of results) {
      if (r.status === 'fulfilled') continue;
      const err = r.reason as Error & { $metadata?: { httpStatusCode?: number } };
      expect(err.name, err.message).to.equal('AlreadyExistsException');
      expect(err.$metadata?.httpStatusCode).to.equal(400);
      expect(err.message).to.include(raceAlias);
    }
    raceWinner = winners[0].KeyId!;
    const race = (await listAllAliases()).filter((a) => a.AliasName === raceAlias);
    expect(race.map((a) => a.TargetKeyId)).to.deep.equal([raceWinner]);
  });

  it('answers 100 parallel Decrypts, half with a wrong context, each with its own outcome', async function () {
    const items = sealed.slice(20, 120);
    const results = await Promise.allSettled(
      items.map((s, i) =>
        kms.send(new DecryptCommand({ CiphertextBlob: s.blob, EncryptionContext: i % 2 === 0 ? s.context : { n: 'wrong' } })),
      ),
    );
    const problems: string[] = [];
    results.forEach((r, i) => {
      if (i % 2 === 0) {
        if (r.status === 'rejected') problems.push(`#${i}: ${(r.reason as Error).name}`);
        else if (!Buffer.from(r.value.Plaintext!).equals(items[i].plaintext)) problems.push(`#${i}: wrong plaintext`);
      } else if (r.status === 'fulfilled') {
        problems.push(`#${i}: decrypted with a wrong context`);
      } else if ((r.reason as Error).name !== 'InvalidCiphertextException') {
        problems.push(`#${i}: ${(r.reason as Error).name}: ${(r.reason as Error).message}`);
      }
    });
    expect(problems).to.deep.equal([]);
    // The token sessions of the failed calls were replaced: everything still works.
    expect(await checkAllDecrypt(items)).to.deep.equal([]);
  });

  it('lets exactly one of 5 parallel ScheduleKeyDeletion calls on one key succeed', async function () {
    scheduledKey = (await kms.send(new CreateKeyCommand({ Description: 'to be deleted' }))).KeyMetadata!;
    const results = await Promise.allSettled(
      Array.from({ length: 5 }, () => kms.send(new ScheduleKeyDeletionCommand({ KeyId: scheduledKey.KeyId, PendingWindowInDays: 7 }))),
    );
    const ok = results.flatMap((r) => (r.status === 'fulfilled' ? [r.value] : []));
    expect(ok, 'successful ScheduleKeyDeletion calls').to.have.length(1);
    for (const r of results) {
      if (r.status === 'rejected') expect((r.reason as Error).name, (r.reason as Error).message).to.equal('KMSInvalidStateException');
    }
    scheduledDeletionDate = ok[0].DeletionDate!.getTime();
    const described = await kms.send(new DescribeKeyCommand({ KeyId: scheduledKey.KeyId }));
    expect(described.KeyMetadata!.KeyState).to.equal('PendingDeletion');
    expect(described.KeyMetadata!.DeletionDate!.getTime()).to.equal(scheduledDeletionDate);
  });

  it('after a restart, still has every key, every alias, and decrypts every ciphertext', async function () {
    const aliasesBefore = (await listAllAliases()).map((a) => `${a.AliasName}->${a.TargetKeyId}`).sort();
    kms.destroy();
    await suite.restart();

    expect(await listAllKeyIds()).to.have.members([...keys, scheduledKey].map((k) => k.KeyId!));
    const pending = await kms.send(new DescribeKeyCommand({ KeyId: scheduledKey.KeyId }));
    expect(pending.KeyMetadata!.KeyState).to.equal('PendingDeletion');
    expect(pending.KeyMetadata!.DeletionDate!.getTime()).to.equal(scheduledDeletionDate);
    const described = await Promise.all(keys.map((k) => kms.send(new DescribeKeyCommand({ KeyId: k.KeyId }))));
    described.forEach((d, i) => {
      expect(d.KeyMetadata!.KeyState, keys[i].KeyId).to.equal('Enabled');
      expect(d.KeyMetadata!.CurrentKeyMaterialId, keys[i].KeyId).to.equal(keys[i].CurrentKeyMaterialId);
    });

    const aliasesAfter = (await listAllAliases()).map((a) => `${a.AliasName}->${a.TargetKeyId}`).sort();
    expect(aliasesAfter).to.deep.equal(aliasesBefore);
    expect(aliasesAfter).to.include(`${raceAlias}->${raceWinner}`);
    expect(aliasesAfter.filter((a) => a.startsWith(`${flipAlias}->`))).to.have.length(1);

    expect(sealed).to.have.length(20 + 200 + 100);
    expect(await checkAllDecrypt(sealed)).to.deep.equal([]);
  });

  it('recorded no unexpected failure in the server log', function () {
    expect(server.stderr()).not.to.include('unexpected failure');
  });
});
