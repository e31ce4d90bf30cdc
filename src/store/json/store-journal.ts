import * as fs from 'node:fs';
import * as path from 'node:path';
import { replaceFile, syncDirectory } from '../../durable-fs';
import { applyWrites } from './overlay-transaction';
import type { RecordMap } from './record-map';
import type { Snapshot } from './snapshot';

/**
 * The JSON store's journal: metadata.journal beside metadata.json, one line per committed
 * batch, `{"seq":N,"writes":{"<kind>":{"<record name>":<record or null>}}}`. A large store
 * appends each commit here (its own records' bytes, one fdatasync) instead of rewriting the
 * whole file: with 100,000 keys and an alias each that file is 97 MB, and every CreateGrant
 * rewrote and fsynced it (1.2–1.7 s each). metadata.json names the last entry it includes
 * (`journalSeq`); opening replays the later ones in order.
 *
 * Crash safety: an entry is acknowledged only after its fdatasync, and entries are appended one
 * at a time, so only the last line can be torn by a crash (cut short, or a tail of zeros the
 * file system had not written yet). A torn last line was never acknowledged and is cut off at
 * opening; damage anywhere before a good line, or a gap in the numbering, means the file was
 * changed outside p11kms, and the store refuses to open rather than lose what it hid.
 */
export const JOURNAL_FILE = 'metadata.journal';

/** Below 1 MiB a rewrite of metadata.json costs a few milliseconds and keeps the file self-contained. */
export const DEFAULT_JOURNAL_FROM_BYTES = 1024 * 1024;

/** The journal is never rewritten into metadata.json before it reaches this size. */
export const MIN_JOURNAL_BYTES = 64 * 1024;

/** A batch's writes per kind of record, by record name (null: deleted). */
export type BatchWrites = { [K in keyof Snapshot]?: Map<string, unknown> };

const KINDS: ReadonlySet<string> = new Set<keyof Snapshot>(['keys', 'aliases', 'grants', 'customKeyStores', 'intents', 'outbox']);

const REFUSAL = 'p11kms does not start on a damaged store (it would lose what the damage hid): restore the data directory from a backup.';

export interface ReplayedJournal {
  /** The last entry applied, or the checkpoint's when none was. */
  seq: number;
  /** The length of the good entries: what follows is a torn last write. */
  goodBytes: number;
  /** Every good entry is already in metadata.json (a crash came between its rewrite and the journal's reset). */
  allInCheckpoint: boolean;
}

/** Applies the journal's entries after `checkpointSeq` to the snapshot, in order. */
export function replayJournal(dataDir: string, snapshot: Snapshot, checkpointSeq: number): ReplayedJournal {
  const file = path.join(dataDir, JOURNAL_FILE);
  if (!fs.existsSync(file)) return { seq: checkpointSeq, goodBytes: 0, allInCheckpoint: true };
  const damaged = (why: string) => new Error(`${file} is damaged: ${why}. ${REFUSAL}`);
  let seq = checkpointSeq;
  let previous: number | undefined;
  let applied = 0;
  const goodBytes = readGoodLines(fs.readFileSync(file), parseEntry, (from, to) => damaged(`bytes ${from}–${to} are not a journal entry, and entries follow them`), (entry) => {
    if (previous !== undefined && entry.seq !== previous + 1) throw damaged(`entry ${entry.seq} follows entry ${previous}`);
    if (entry.seq > checkpointSeq) {
      if (entry.seq !== seq + 1) throw damaged(`its entries resume at ${entry.seq} but metadata.json holds those up to ${checkpointSeq} only (was metadata.json restored from an older backup without its journal?)`);
      for (const [kind, writes] of Object.entries(entry.writes)) applyWrites(snapshot[kind as keyof Snapshot] as RecordMap<unknown>, new Map(Object.entries(writes)));
      seq = entry.seq;
      applied++;
    }
    previous = entry.seq;
  });
  return { seq, goodBytes, allInCheckpoint: applied === 0 };
}

/**
 * Hands each good line of an append-only file (metadata.journal, last-usage.journal) to `use`,
 * in order, and returns the length of the good lines. Lines are appended whole and fdatasynced
 * one at a time, so only the last can be torn by a crash (it was never acknowledged, and is left
 * out); a line `parse` refuses with good ones after it was made outside p11kms: `damaged` names
 * its bytes, and the store does not open.
 */
export function readGoodLines<T>(bytes: Buffer, parse: (line: string) => T | undefined, damaged: (from: number, to: number) => Error, use: (entry: T) => void): number {
  let goodBytes = 0;
  let firstBad: number | undefined;
  for (let start = 0; start < bytes.length; ) {
    const end = bytes.indexOf(0x0a, start);
    const next = end < 0 ? bytes.length : end + 1;
    const entry = end < 0 ? undefined : parse(bytes.toString('utf8', start, end));
    if (entry === undefined) {
      firstBad ??= start;
    } else {
      if (firstBad !== undefined) throw damaged(firstBad, start);
      use(entry);
      goodBytes = next;
    }
    start = next;
  }
  return goodBytes;
}

/**
 * At opening (the directory lock held): cuts a torn last entry off, and empties a journal whose
 * entries are all in metadata.json already, so that the next entry follows the last good one.
 */
export function cutTornTail(dataDir: string, journal: ReplayedJournal): ReplayedJournal {
  const keep = journal.allInCheckpoint ? 0 : journal.goodBytes;
  cutJournalAt(path.join(dataDir, JOURNAL_FILE), keep);
  return { ...journal, goodBytes: keep };
}

/** Cuts an append-only file back to its first `keep` bytes (durably), when it is longer. */
export function cutJournalAt(file: string, keep: number): void {
  if (!fs.existsSync(file) || fs.statSync(file).size === keep) return;
  const fd = fs.openSync(file, 'r+');
  try {
    fs.ftruncateSync(fd, keep);
    fs.fsyncSync(fd);
  } finally {
    fs.closeSync(fd);
  }
}

interface Entry {
  seq: number;
  writes: Record<string, Record<string, unknown>>;
}

/** A line's entry, or undefined when it is not one (torn or damaged). */
function parseEntry(line: string): Entry | undefined {
  let parsed: unknown;
  try {
    parsed = JSON.parse(line);
  } catch {
    return undefined;
  }
  const entry = parsed as Partial<Entry> | null;
  if (typeof entry?.seq !== 'number' || !Number.isSafeInteger(entry.seq) || typeof entry.writes !== 'object' || entry.writes === null) return undefined;
  for (const [kind, writes] of Object.entries(entry.writes)) if (!KINDS.has(kind) || typeof writes !== 'object' || writes === null) return undefined;
  return entry as Entry;
}

/** One entry's line: each record's JSON made by `jsonOf` (cached per record by the writer). */
export function entryLine(seq: number, writes: BatchWrites, jsonOf: (record: object) => string): string {
  const kinds: string[] = [];
  for (const [kind, records] of Object.entries(writes)) {
    if (!records || records.size === 0) continue;
    const members: string[] = [];
    for (const [name, record] of records) members.push(`${JSON.stringify(name)}:${record === null ? 'null' : jsonOf(record as object)}`);
    kinds.push(`${JSON.stringify(kind)}:{${members.join(',')}}`);
  }
  return `{"seq":${seq},"writes":{${kinds.join(',')}}}\n`;
}

/**
 * Appends entries durably; a failed append is cut off again before the next. Appends, resets
 * and the dropping of entries already in metadata.json take turns (the latter runs while
 * commits go on).
 */
export class JournalWriter {
  private handle: fs.promises.FileHandle | undefined;
  /** Set when a failed append could not be cut off, or a reset failed: nothing may follow until a reset. */
  private blocked = false;
  private turn: Promise<unknown> = Promise.resolve();

  constructor(
    private readonly dataDir: string,
    /** The journal's length: its good entries. */
    public bytes: number,
    /** The journal's name in the data directory (last-usage.journal is one too). */
    private readonly fileName: string = JOURNAL_FILE,
  ) {}

  /** False after an append that failed and could not be cut off: the next commit rewrites metadata.json. */
  get appendable(): boolean {
    return !this.blocked;
  }

  /** After a reset that failed: the entries left are all in metadata.json, and a new one would not follow them. */
  blockAppends(): void {
    this.blocked = true;
  }

  append(line: string): Promise<void> {
    return this.inTurn(async () => {
      const data = Buffer.from(line, 'utf8');
      const handle = await this.opened();
      try {
        // writeFile writes until every byte is down or fails (one write() may write less).
        await handle.writeFile(data);
        await handle.datasync();
      } catch (err) {
        // Cut the partial entry off, so that a later entry does not follow damage.
        await handle
          .truncate(this.bytes)
          .then(() => handle.datasync())
          .catch(() => this.blockAppends());
        throw err;
      }
      this.bytes += data.length;
    });
  }

  /** Empties the journal after metadata.json was rewritten with every entry in it. */
  reset(): Promise<void> {
    return this.inTurn(async () => {
      if (this.bytes === 0 && !this.blocked) return;
      const handle = await this.opened();
      await handle.truncate(0);
      await handle.datasync();
      this.bytes = 0;
      this.blocked = false;
    });
  }

  /**
   * Replaces the journal with its entries after byte `through` (those before it are in
   * metadata.json now): the later ones copied to a temporary file, fsynced, renamed over the
   * journal, the directory fsynced before the next append. A crash before the rename leaves
   * the whole journal, whose first entries opening skips.
   */
  dropThrough(through: number): Promise<void> {
    return this.inTurn(async () => {
      const file = path.join(this.dataDir, this.fileName);
      const later = Buffer.alloc(this.bytes - through);
      const reader = await fs.promises.open(file, 'r');
      try {
        await reader.read(later, 0, later.length, through);
      } finally {
        await reader.close();
      }
      await replaceFile(file, later);
      // Appends go to the new file from now on; its name must be durable before the first.
      await this.handle?.close().catch(() => undefined);
      this.handle = undefined;
      this.bytes = later.length;
      await syncDirectory(this.dataDir).catch((err: unknown) => {
        this.blockAppends();
        throw err;
      });
    });
  }

  close(): Promise<void> {
    return this.inTurn(async () => {
      const handle = this.handle;
      this.handle = undefined;
      await handle?.close();
    });
  }

  private inTurn<T>(work: () => Promise<T>): Promise<T> {
    const result = this.turn.then(work);
    this.turn = result.catch(() => undefined);
    return result;
  }

  private async opened(): Promise<fs.promises.FileHandle> {
    if (this.handle) return this.handle;
    const file = path.join(this.dataDir, this.fileName);
    const created = !fs.existsSync(file);
    // 'a': every write lands at the end, also after a truncate.
    this.handle = await fs.promises.open(file, 'a', 0o600);
    if (created) await syncDirectory(this.dataDir);
    return this.handle;
  }
}
