import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { Writable } from 'node:stream';
import { expect } from 'chai';
import pino from 'pino';
import type { GrantRecord } from '../../src/store/grant-record';
import { JsonFileStore } from '../../src/store/json/json-file-store';
import { fillDisk, mountSmallDisk, unmountSmallDisk } from '../support/small-disk';
import { contentsOf, grantRecord, keyRecord } from '../support/store-records';

// The JSON store's journal (src/store/json/store-journal.ts): a large store appends each commit
// to metadata.journal instead of rewriting metadata.json. These tests open stores with
// journalFromBytes 0 (every store journals) so that a few records show what 100,000 would.

const journaling = { journalFromBytes: 0 };

/** A file's bytes, empty when it does not exist (a store that always journals may have no metadata.json yet). */
const bytesOf = (file: string) => (fs.existsSync(file) ? fs.readFileSync(file) : Buffer.alloc(0));

/** The entry numbers of a journal's lines. */
const seqsOf = (journal: Buffer) =>
  journal
    .toString('utf8')
    .split('\n')
    .filter((line) => line !== '')
    .map((line) => (JSON.parse(line) as { seq: number }).seq);

/** Where a journal's line `index` begins. */
function lineStart(journal: Buffer, index: number): number {
  let at = 0;
  for (let i = 0; i < index; i++) at = journal.indexOf(0x0a, at) + 1;
  return at;
}

/** The store's contents now, and after closing and opening it again: they must be equal. */
async function reopened(dir: string, store: JsonFileStore): Promise<{ before: unknown; after: unknown; store: JsonFileStore }> {
  const before = await contentsOf(store);
  await store.close();
  const again = await JsonFileStore.open(dir, journaling);
  return { before, after: await contentsOf(again), store: again };
}

describe('JSON file store: the journal', function () {
  let dir: string;
  const files = () => ({ metadata: path.join(dir, 'metadata.json'), journal: path.join(dir, 'metadata.journal') });
  beforeEach(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'p11kms-journal-'));
  });
  afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));
  const checkpointSeq = () => (fs.existsSync(files().metadata) ? (JSON.parse(fs.readFileSync(files().metadata, 'utf8')) as { journalSeq: number }).journalSeq : 0);
  const journalSeqs = () => seqsOf(fs.readFileSync(files().journal));

  it('appends a commit to metadata.journal (its own records only) and leaves metadata.json as it was; opening replays it', async () => {
    let store = await JsonFileStore.open(dir, journaling);
    const keys = Array.from({ length: 50 }, () => keyRecord({ description: 'k'.repeat(200) }));
    const grant = grantRecord(keys[0].keyId);
    try {
      await store.transact((tx) => keys.forEach((k) => tx.putKey(k)));
      const metadata = bytesOf(files().metadata);
      const journalBefore = fs.statSync(files().journal).size;
      await store.transact((tx) => {
        tx.putGrant(grant);
        tx.deleteKey(keys[1]);
      });
      expect(bytesOf(files().metadata).equals(metadata), 'metadata.json not rewritten').to.equal(true);
      const added = fs.statSync(files().journal).size - journalBefore;
      expect(added, 'the journal grew by the grant and the deletion, not by the 50 keys').to.be.within(JSON.stringify(grant).length, JSON.stringify(grant).length + 200);
      const { before, after, store: again } = await reopened(dir, store);
      store = again;
      expect(after).to.deep.equal(before);
      expect((await store.getGrant(grant.grantId))?.keyId).to.equal(keys[0].keyId);
      expect(await store.getKey(keys[1])).to.equal(undefined);
      expect((await store.listKeys()).length).to.equal(49);
    } finally {
      await store.close();
    }
  });

  it('rewrites metadata.json with every record in the background once the journal reaches its bound; commits go on, and the journal keeps only the later ones', async () => {
    let store = await JsonFileStore.open(dir, journaling);
    try {
      const key = keyRecord({ description: 'x'.repeat(1000) });
      await store.transact((tx) => tx.putKey(key));
      // Each grant's entry is ~1 KB with its audit outbox twin; the bound is 64 KiB for a small file.
      const grants: GrantRecord[] = [];
      while (checkpointSeq() === 0) {
        expect(grants.length, 'a rewrite within 5,000 commits').to.be.lessThan(5000);
        const grant = grantRecord(key.keyId);
        grants.push(grant);
        await store.transact((tx) => tx.putGrant(grant));
      }
      await store.close();
      const file = JSON.parse(fs.readFileSync(files().metadata, 'utf8')) as { version: number; journalSeq: number; grants: GrantRecord[] };
      expect(file.version).to.equal(2);
      // Commit 1 made the key; commit n + 1 the n-th grant.
      expect(file.journalSeq, 'many commits before the rewrite').to.be.greaterThan(50);
      // (in the store's own order: record-map.ts)
      expect(file.grants.map((g) => g.grantId).sort(), 'the file holds the commits up to its journalSeq, no more').to.deep.equal(
        grants
          .slice(0, file.journalSeq - 1)
          .map((g) => g.grantId)
          .sort(),
      );
      const entries = journalSeqs();
      expect(entries[0], 'the journal starts after the file').to.equal(file.journalSeq + 1);
      expect(entries[entries.length - 1], 'and ends with the last commit').to.equal(grants.length + 1);

      store = await JsonFileStore.open(dir, journaling);
      // listGrants orders by creation time, then id: grants made in one millisecond come by id.
      expect((await store.listGrants()).map((g) => g.grantId).sort()).to.deep.equal(grants.map((g) => g.grantId).sort());
      await store.transact((tx) => tx.putGrant(grantRecord(key.keyId)));
      const { before, after, store: again } = await reopened(dir, store);
      store = again;
      expect(after).to.deep.equal(before);
    } finally {
      await store.close();
    }
  });

  it('a store below journalFromBytes rewrites metadata.json at each commit and keeps no journal', async () => {
    const store = await JsonFileStore.open(dir, { journalFromBytes: 1024 * 1024 });
    try {
      const key = keyRecord();
      await store.transact((tx) => tx.putKey(key));
      await store.transact((tx) => tx.putGrant(grantRecord(key.keyId)));
      expect(fs.existsSync(files().journal)).to.equal(false);
      expect((JSON.parse(fs.readFileSync(files().metadata, 'utf8')) as { grants: unknown[] }).grants).to.have.length(1);
    } finally {
      await store.close();
    }
  });

  for (const [torn, tail] of [
    ['cut short', (line: Buffer) => line.subarray(0, line.length >> 1)],
    ['zeros the file system had not written yet', (line: Buffer) => Buffer.alloc(line.length)],
    ['complete but without its newline', (line: Buffer) => line.subarray(0, line.length - 1)],
  ] as const) {
    it(`a torn last entry (${torn}) was never acknowledged: opening cuts it off and later entries follow the good ones`, async () => {
      let store = await JsonFileStore.open(dir, journaling);
      const key = keyRecord();
      const kept = grantRecord(key.keyId);
      try {
        await store.transact((tx) => tx.putKey(key));
        await store.transact((tx) => tx.putGrant(kept));
        const good = fs.readFileSync(files().journal);
        await store.transact((tx) => tx.putGrant(grantRecord(key.keyId)));
        await store.close();
        const lastLine = fs.readFileSync(files().journal).subarray(good.length);
        fs.writeFileSync(files().journal, Buffer.concat([good, tail(lastLine)]));

        store = await JsonFileStore.open(dir, journaling);
        expect((await store.listGrants()).map((g) => g.grantId)).to.deep.equal([kept.grantId]);
        expect(fs.readFileSync(files().journal).equals(good), 'the torn tail cut off').to.equal(true);
        const later = grantRecord(key.keyId);
        await store.transact((tx) => tx.putGrant(later));
        const { before, after, store: again } = await reopened(dir, store);
        store = again;
        expect(after).to.deep.equal(before);
        expect((await store.listGrants()).map((g) => g.grantId).sort()).to.deep.equal([kept.grantId, later.grantId].sort());
      } finally {
        await store.close();
      }
    });
  }

  it('refuses to open on damage before a good entry or a gap in the numbering, naming the file, and changes nothing', async () => {
    const store = await JsonFileStore.open(dir, journaling);
    const key = keyRecord();
    await store.transact((tx) => tx.putKey(key));
    for (let i = 0; i < 3; i++) await store.transact((tx) => tx.putGrant(grantRecord(key.keyId)));
    await store.close();
    const lines = fs.readFileSync(files().journal, 'utf8').split('\n').slice(0, -1);
    expect(lines.length).to.be.at.least(3);
    const cases: Array<[string, string, RegExp]> = [
      ['a middle entry damaged', [lines[0], lines[1].slice(0, 20), lines[2]].join('\n') + '\n', /metadata\.journal is damaged: bytes \d+–\d+ are not a journal entry, and entries follow them/],
      ['a middle entry missing', [lines[0], lines[2]].join('\n') + '\n', /metadata\.journal is damaged: entry \d+ follows entry \d+/],
      ['the first entries missing', lines.slice(1).join('\n') + '\n', /metadata\.journal is damaged: its entries resume at \d+ but metadata\.json holds those up to \d+ only/],
    ];
    for (const [name, content, refusal] of cases) {
      fs.writeFileSync(files().journal, content);
      const err = await JsonFileStore.open(dir, journaling).then(
        (opened) => opened.close().then(() => undefined),
        (e: Error) => e,
      );
      expect(err?.message, name).to.match(refusal);
      expect(err?.message, name).to.include('p11kms does not start on a damaged store');
      expect(fs.readFileSync(files().journal, 'utf8'), `${name}: nothing rewritten`).to.equal(content);
    }
  });

  it('a crash between the rewrite of metadata.json and the dropping of its entries from the journal: opening skips those entries and applies the later ones', async () => {
    let store = await JsonFileStore.open(dir, journaling);
    const key = keyRecord();
    // The journal as it was after each commit: before a rewrite drops entries, it holds them all.
    const copies: Buffer[] = [];
    let description = '';
    try {
      await store.transact((tx) => tx.putKey(key));
      for (let i = 0; checkpointSeq() === 0; i++) {
        expect(i, 'a rewrite within 5,000 commits').to.be.lessThan(5000);
        description = `version ${i} `.padEnd(2000, '.');
        await store.transact((tx) => tx.putKey({ ...key, description }));
        copies.push(fs.readFileSync(files().journal));
      }
    } finally {
      await store.close();
    }
    const later = fs.readFileSync(files().journal);
    const laterSeqs = journalSeqs();
    // The longest copy still starting at entry 1, then whatever the journal has after it: the
    // journal a crash just before the drop would have left.
    const whole = copies.filter((c) => seqsOf(c)[0] === 1).sort((x, y) => y.length - x.length)[0];
    const wholeSeqs = seqsOf(whole);
    expect(wholeSeqs[wholeSeqs.length - 1], 'the copy holds every entry the file holds').to.be.at.least(checkpointSeq());
    const firstAfter = laterSeqs.findIndex((seq) => seq > wholeSeqs[wholeSeqs.length - 1]);
    const after = firstAfter < 0 ? Buffer.alloc(0) : later.subarray(lineStart(later, firstAfter));
    fs.writeFileSync(files().journal, Buffer.concat([whole, after]));

    store = await JsonFileStore.open(dir, journaling);
    try {
      expect((await store.getKey(key))?.description, 'the last commit').to.equal(description);
      await store.transact((tx) => tx.putKey({ ...key, description: 'after' }));
      const { before, after: reread, store: again } = await reopened(dir, store);
      store = again;
      expect(reread).to.deep.equal(before);
      expect((await store.getKey(key))?.description).to.equal('after');
    } finally {
      await store.close();
    }
  });

  it('on a full disk an append is refused whole and cut off; once space returns commits go on, and reopening shows exactly the acknowledged ones', async () => {
    const disk = mountSmallDisk('1m');
    const data = path.join(disk, 'data');
    const filler = path.join(disk, 'filler');
    let store = await JsonFileStore.open(data, journaling);
    try {
      const key = keyRecord();
      await store.transact((tx) => tx.putKey(key));
      const acknowledged = [grantRecord(key.keyId)];
      await store.transact((tx) => tx.putGrant(acknowledged[0]));
      const journalBefore = fs.readFileSync(path.join(data, 'metadata.journal'));
      fillDisk(filler);
      // A commit bigger than any space left in the last block.
      const refused = { ...grantRecord(key.keyId), name: 'n'.repeat(8000) };
      const err = await store.transact((tx) => tx.putGrant(refused)).then(
        () => undefined,
        (e: NodeJS.ErrnoException) => e,
      );
      expect(err?.code).to.equal('ENOSPC');
      expect(fs.readFileSync(path.join(data, 'metadata.journal')).equals(journalBefore), 'the partial entry cut off').to.equal(true);
      expect(await store.getGrant(refused.grantId)).to.equal(undefined);
      fs.rmSync(filler);
      acknowledged.push(grantRecord(key.keyId));
      await store.transact((tx) => tx.putGrant(acknowledged[1]));
      await store.close();
      store = await JsonFileStore.open(data, journaling);
      expect((await store.listGrants()).map((g) => g.grantId).sort()).to.deep.equal(acknowledged.map((g) => g.grantId).sort());
    } finally {
      await store.close();
      unmountSmallDisk(disk);
    }
  });

  it('a background rewrite that fails (full disk) loses nothing: it is logged, commits go on to the journal, and reopening shows every acknowledged one', async () => {
    const disk = mountSmallDisk('1m');
    const data = path.join(disk, 'data');
    const filler = path.join(disk, 'filler');
    const warnings: string[] = [];
    const log = pino(
      { level: 'warn' },
      new Writable({
        write(chunk: Buffer, _encoding, done) {
          warnings.push(String((JSON.parse(chunk.toString()) as { msg: string }).msg));
          done();
        },
      }),
    );
    let store = await JsonFileStore.open(data, { ...journaling, log });
    try {
      const key = keyRecord();
      await store.transact((tx) => tx.putKey(key));
      // Room for the journal to reach its 64 KiB bound and some more entries, not for the rewrite
      // of metadata.json, which is as large as the journal.
      fillDisk(filler);
      fs.truncateSync(filler, fs.statSync(filler).size - 96 * 1024);
      const acknowledged: string[] = [];
      const refused: string[] = [];
      // While the failing rewrite's temporary file holds the last free bytes, an append may be
      // refused too (ENOSPC, cut off): refused whole, it must not come back at reopening.
      const commit = async () => {
        const grant = grantRecord(key.keyId);
        const err = await store.transact((tx) => tx.putGrant(grant)).then(
          () => undefined,
          (e: NodeJS.ErrnoException) => e,
        );
        if (err === undefined) acknowledged.push(grant.grantId);
        else {
          expect(err.code).to.equal('ENOSPC');
          refused.push(grant.grantId);
        }
      };
      while (warnings.length === 0) {
        expect(acknowledged.length + refused.length, 'the rewrite was tried within 500 commits').to.be.lessThan(500);
        await commit();
      }
      expect(warnings[0]).to.match(/metadata\.json could not be rewritten from its journal/);
      expect(fs.existsSync(path.join(data, 'metadata.json')), 'no metadata.json half-written').to.equal(false);
      expect(fs.readdirSync(data).filter((f) => f.endsWith('.tmp')), 'no temporary file left').to.deep.equal([]);
      const before = acknowledged.length;
      for (let i = 0; i < 5; i++) await commit();
      expect(acknowledged.length - before, 'commits go on to the journal after the failed rewrite').to.equal(5);
      fs.rmSync(filler);
      await store.close();
      store = await JsonFileStore.open(data, journaling);
      const grants = (await store.listGrants()).map((g) => g.grantId);
      expect(grants.sort()).to.deep.equal(acknowledged.sort());
      expect(grants.filter((id) => refused.includes(id)), 'no refused commit kept').to.deep.equal([]);
    } finally {
      await store.close();
      unmountSmallDisk(disk);
    }
  });
});

describe('JSON file store: the last-usage journal', function () {
  it('on a full disk a usage flush is refused whole and cut off; once space returns the next appends after the good lines, and reopening shows exactly the acknowledged uses', async () => {
    const disk = mountSmallDisk('1m');
    const data = path.join(disk, 'data');
    const filler = path.join(disk, 'filler');
    const usageJournal = path.join(data, 'last-usage.journal');
    const use = (requestId: string, size = 0) => ({ operation: 'Encrypt', at: Date.now(), requestId: requestId + 'r'.repeat(size) });
    const [key, refusedKey, laterKey] = [keyRecord(), keyRecord(), keyRecord()];
    let store = await JsonFileStore.open(data);
    try {
      await store.transact((tx) => [key, refusedKey, laterKey].forEach((k) => tx.putKey(k)));
      await store.transactLastUsage((tx) => tx.putKey({ ...key, lastUsage: use('acknowledged') }));
      const journalBefore = fs.readFileSync(usageJournal);
      fillDisk(filler);
      // A line bigger than any space left in the last block.
      const err = await store.transactLastUsage((tx) => tx.putKey({ ...refusedKey, lastUsage: use('refused', 8000) })).then(
        () => undefined,
        (e: NodeJS.ErrnoException) => e,
      );
      expect(err?.code).to.equal('ENOSPC');
      expect(fs.readFileSync(usageJournal).equals(journalBefore), 'the partial line cut off').to.equal(true);
      expect((await store.getKey(refusedKey))?.lastUsage, 'a refused flush is not committed').to.equal(undefined);
      fs.rmSync(filler);
      await store.transactLastUsage((tx) => tx.putKey({ ...laterKey, lastUsage: use('later') }));
      await store.close();
      store = await JsonFileStore.open(data);
      expect((await store.getKey(key))?.lastUsage?.requestId).to.equal('acknowledged');
      expect((await store.getKey(refusedKey))?.lastUsage).to.equal(undefined);
      expect((await store.getKey(laterKey))?.lastUsage?.requestId).to.equal('later');
    } finally {
      await store.close();
      unmountSmallDisk(disk);
    }
  });
});
