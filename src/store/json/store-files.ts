import * as fs from 'node:fs';
import * as path from 'node:path';
import { replaceFileDurably } from '../../durable-fs';
import type { GrantRecord } from '../grant-record';
import type { AliasRecord, AuditOutboxEntry, CreationIntent, CustomKeyStoreRecord, KeyRecord } from '../records';
import { parseStoreFile, REFUSAL } from './damaged-file';
import { applyLastUses, LastUsageWriter, type StoredUses } from './last-usage-files';
import { RecordMap } from './record-map';
import { aliasKey, emptySnapshot, recordKey, type Snapshot } from './snapshot';
import { type BatchWrites, entryLine, JournalWriter, MIN_JOURNAL_BYTES, type ReplayedJournal, replayJournal } from './store-journal';

// The JSON store's files under the data directory: metadata.json holds every record up to
// its journalSeq; metadata.journal the commits after it (store-journal.ts); last-usage.json
// and last-usage.journal keys' last uses written since metadata.json last was
// (last-usage-files.ts).

const FORMAT = 'p11kms-metadata';
/** Version 2 may have a journal beside it: p11kms of version-1 days refuses it rather than miss the journal. */
const FORMAT_VERSION = 2;
const READABLE_VERSIONS: ReadonlySet<unknown> = new Set([1, 2]);
export const STORE_FILE = 'metadata.json';

interface StoreFile {
  format: typeof FORMAT;
  version: number;
  /** The last journal entry this file includes; absent in version 1 (no journal). */
  journalSeq?: number;
  keys: KeyRecord[];
  aliases: AliasRecord[];
  /** Absent in files written before grants existed. */
  grants?: GrantRecord[];
  /** Absent in files written before custom key stores existed. */
  customKeyStores?: CustomKeyStoreRecord[];
  /** Absent in files written before creation intents existed. */
  intents?: CreationIntent[];
  /** Absent in files written before the audit outbox existed. */
  auditOutbox?: AuditOutboxEntry[];
}

/** Records serialised between two turns of the event loop while a commit builds the file. */
const RECORDS_PER_TURN = 2000;

/** What a data directory holds, and where its journal stands. */
export interface StoredState {
  snapshot: Snapshot;
  /** metadata.json's size: it decides whether commits go to the journal. */
  fileBytes: number;
  journal: ReplayedJournal;
  uses: StoredUses;
}

/**
 * The records of a data directory: metadata.json, then the journal's later commits, then last
 * uses from last-usage.json and last-usage.journal where newer. Reads only (the store cuts a
 * torn journal entry off when it opens).
 */
export function readStoreFiles(dataDir: string): StoredState {
  const checkpoint = readCheckpoint(path.join(dataDir, STORE_FILE));
  const journal = replayJournal(dataDir, checkpoint.snapshot, checkpoint.journalSeq);
  const uses = applyLastUses(checkpoint.snapshot, dataDir);
  return { snapshot: checkpoint.snapshot, fileBytes: checkpoint.bytes, journal, uses };
}

function readCheckpoint(file: string): { snapshot: Snapshot; journalSeq: number; bytes: number } {
  if (!fs.existsSync(file)) return { snapshot: emptySnapshot(), journalSeq: 0, bytes: 0 };
  const { parsed: raw, bytes } = parseStoreFile(file);
  const parsed = raw as StoreFile;
  if (parsed?.format !== FORMAT || !READABLE_VERSIONS.has(parsed.version)) {
    throw new Error(`${file} is not a p11kms metadata file of version ${[...READABLE_VERSIONS].join(' or ')}`);
  }
  const journalSeq = parsed.journalSeq ?? 0;
  if (!Number.isSafeInteger(journalSeq) || journalSeq < 0) throw new Error(`${file} is damaged: its "journalSeq" is not a count. ${REFUSAL}`);
  const lists = { keys: parsed.keys, aliases: parsed.aliases, grants: parsed.grants ?? [], customKeyStores: parsed.customKeyStores ?? [], intents: parsed.intents ?? [], auditOutbox: parsed.auditOutbox ?? [] };
  const broken = Object.entries(lists).find(([, list]) => !Array.isArray(list));
  if (broken) throw new Error(`${file} is damaged: its "${broken[0]}" is not a list. ${REFUSAL}`);
  const snapshot: Snapshot = {
    keys: RecordMap.of(lists.keys.map((k) => [recordKey(k), k])),
    aliases: RecordMap.of(lists.aliases.map((a) => [aliasKey(a, a.aliasName), a])),
    grants: RecordMap.of(lists.grants.map((g) => [g.grantId, g])),
    customKeyStores: RecordMap.of(lists.customKeyStores.map((c) => [c.customKeyStoreId, c])),
    intents: RecordMap.of(lists.intents.map((i) => [i.creationId, i])),
    outbox: RecordMap.of(lists.auditOutbox.map((e) => [e.id, e])),
  };
  return { snapshot, journalSeq, bytes };
}

/**
 * Writes the store's files crash-safely. Below `journalFromBytes`, a commit rewrites
 * metadata.json whole: a temporary file, fsynced, renamed over the old one, the directory
 * fsynced. From there on, a commit is appended to the journal (one fdatasync), and once the
 * journal has grown to a quarter of metadata.json (and at least `journalFromBytes`),
 * metadata.json is rewritten in the background with every entry so far while later commits
 * go on to the journal, which then drops the entries the file holds. A crash leaves the old or
 * the new state either way.
 */
export class StoreFileWriter {
  /**
   * Each record's JSON, made when it is first written. Records are immutable (a change puts a
   * new object), so a commit serialises only what changed: with 100,000 keys, stringifying
   * the whole store took ~1.3 s on the event loop for every commit, the last-usage flush
   * every 5 s included.
   */
  private readonly serialized = new WeakMap<object, string>();
  private readonly journal: JournalWriter;
  private readonly lastUses: LastUsageWriter;
  /** The last committed batch's number (journal entry or rewrite). */
  private seq: number;
  private fileBytes: number;
  /** The background rewrite of metadata.json, while it runs. */
  private compaction: Promise<void> | undefined;
  /** After a failed background rewrite: the journal's length from which the next one is tried. */
  private compactAgainAt = 0;

  constructor(
    private readonly dataDir: string,
    stored: Pick<StoredState, 'fileBytes' | 'journal' | 'uses'>,
    private readonly journalFromBytes: number,
    private readonly onRewriteFailure: (err: unknown) => void = () => undefined,
  ) {
    this.seq = stored.journal.seq;
    this.fileBytes = stored.fileBytes;
    this.journal = new JournalWriter(dataDir, stored.journal.goodBytes);
    this.lastUses = new LastUsageWriter(dataDir, stored.uses, this.jsonOf);
  }

  /**
   * Commits a batch: its writes to the journal, or the whole snapshot to metadata.json. The
   * snapshot is the batch's committed state, never changed afterwards (each batch copies the
   * maps it writes), so a background rewrite may read it while later batches commit.
   */
  async writeRecords(snapshot: Snapshot, writes: BatchWrites): Promise<void> {
    const seq = this.seq + 1;
    if (this.fileBytes >= this.journalFromBytes && this.journal.appendable) {
      await this.journal.append(entryLine(seq, writes, this.jsonOf));
      this.seq = seq;
      const bound = Math.max(MIN_JOURNAL_BYTES, this.journalFromBytes, this.fileBytes / 4);
      if (!this.compaction && this.journal.bytes >= Math.max(bound, this.compactAgainAt)) {
        this.compaction = this.compact(snapshot, seq, this.journal.bytes).finally(() => (this.compaction = undefined));
      }
      return;
    }
    // A background rewrite finishes first: the journal's reset must not come before its swap.
    await this.compaction;
    this.fileBytes = await replaceFileDurably(path.join(this.dataDir, STORE_FILE), this.fileChunks(snapshot, seq));
    this.seq = seq;
    // The batch is committed: metadata.json holds it. A journal that cannot be emptied now only
    // stops appends (its entries are all in the file) until a later rewrite empties it.
    await this.journal.reset().catch(() => this.journal.blockAppends());
  }

  /**
   * Rewrites metadata.json with every commit up to `seq` (the journal's first `through` bytes),
   * then drops those entries from the journal. On failure the journal keeps every entry, and
   * the next attempt waits until it has grown by another MIN_JOURNAL_BYTES (a full disk is not
   * written to again at every commit).
   */
  private async compact(snapshot: Snapshot, seq: number, through: number): Promise<void> {
    try {
      this.fileBytes = await replaceFileDurably(path.join(this.dataDir, STORE_FILE), this.fileChunks(snapshot, seq));
      await this.journal.dropThrough(through);
      this.compactAgainAt = 0;
    } catch (err) {
      this.compactAgainAt = this.journal.bytes + MIN_JOURNAL_BYTES;
      this.onRewriteFailure(err);
    }
  }

  /** A usage flush: the keys it wrote (`changed`) and every key after it (last-usage-files.ts). */
  writeLastUses(snapshot: Snapshot, changed: ReadonlyMap<string, unknown>): Promise<void> {
    return this.lastUses.write(snapshot, changed);
  }

  async close(): Promise<void> {
    await this.compaction;
    await this.journal.close();
    await this.lastUses.close();
  }

  private readonly jsonOf = (record: object): string => {
    let json = this.serialized.get(record);
    if (json === undefined) {
      json = JSON.stringify(record);
      this.serialized.set(record, json);
    }
    return json;
  };

  /**
   * The file's bytes: the same text as JSON.stringify of a StoreFile, built from each record's
   * own JSON (serialized) a slice of records at a time and written slice by slice, so requests
   * keep being answered while a large store is written (100,000 keys with an alias each: 97 MB),
   * and the whole file is never one more buffer in memory (nor copied into one).
   */
  private async *fileChunks(snapshot: Snapshot, journalSeq: number): AsyncGenerator<Buffer> {
    let parts: string[] = [`{"format":${JSON.stringify(FORMAT)},"version":${FORMAT_VERSION},"journalSeq":${journalSeq}`];
    const slice = () => {
      const chunk = Buffer.from(parts.join(''), 'utf8');
      parts = [];
      return chunk;
    };
    const lists: Array<[string, Iterable<object>]> = [
      ['keys', snapshot.keys.values()],
      ['aliases', snapshot.aliases.values()],
      ['grants', snapshot.grants.values()],
      ['customKeyStores', snapshot.customKeyStores.values()],
      ['intents', snapshot.intents.values()],
      ['auditOutbox', snapshot.outbox.values()],
    ];
    for (const [name, records] of lists) {
      parts.push(`,${JSON.stringify(name)}:[`);
      let count = 0;
      for (const record of records) {
        const json = this.jsonOf(record);
        parts.push(count === 0 ? json : `,${json}`);
        // Each slice's write is awaited before the next is built: the event loop turns meanwhile.
        if (++count % RECORDS_PER_TURN === 0) yield slice();
      }
      parts.push(']');
    }
    parts.push('}');
    yield slice();
  }
}

/** Temporary files of replaceFile: `<file>.<random>.tmp`. */
const TEMP_FILE = /^(metadata\.json|last-usage\.json|metadata\.journal)\.[0-9a-f]{16}\.tmp$/;

/** Removes the temporary files of writes a crash interrupted (called with the directory lock held). */
export function removeUnfinishedWrites(dataDir: string): void {
  for (const name of fs.readdirSync(dataDir)) if (TEMP_FILE.test(name)) fs.rmSync(path.join(dataDir, name), { force: true });
}
