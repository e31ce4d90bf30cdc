import * as fs from 'node:fs';
import * as path from 'node:path';
import { replaceFileDurably } from '../../durable-fs';
import type { LastUsageRecord } from '../records';
import { parseStoreFile, REFUSAL } from './damaged-file';
import type { Snapshot } from './snapshot';
import { cutJournalAt, JournalWriter, readGoodLines } from './store-journal';

// Keys' last uses beside the store's own files (a use changes nothing else of a key, and the
// usage flush runs every 5 s while keys are used): last-usage.json holds every used key's last
// use as of its writing, last-usage.journal one line per flush since, with only the uses that
// flush changed. Opening applies each use where it is newer than the key's own.

export const LAST_USAGE_FILE = 'last-usage.json';
export const LAST_USAGE_JOURNAL = 'last-usage.journal';
const FORMAT = 'p11kms-last-usage';

interface LastUsageFile {
  format: typeof FORMAT;
  version: 1;
  /** By `<region>/<key id>`. */
  uses: Record<string, LastUsageRecord>;
}

/** Uses serialised between two turns of the event loop while last-usage.json is built. */
const USES_PER_TURN = 2000;

/**
 * The journal is folded into last-usage.json once it is at least this long and as long as that
 * file: flushes that each change a few keys' uses append a few lines for a long time, and a
 * flush that changes every key's costs at most about one rewrite of the file.
 */
const FOLD_FROM_BYTES = 1024 * 1024;

/** Where the last uses of a data directory stand after reading them. */
export interface StoredUses {
  /** last-usage.json's size. */
  fileBytes: number;
  /** The length of the journal's good lines: what follows is a torn last write. */
  journalGoodBytes: number;
}

/** Applies last-usage.json, then each line of last-usage.journal, to the snapshot's keys where newer. Reads only. */
export function applyLastUses(snapshot: Snapshot, dataDir: string): StoredUses {
  const file = path.join(dataDir, LAST_USAGE_FILE);
  let fileBytes = 0;
  if (fs.existsSync(file)) {
    const { parsed, bytes } = parseStoreFile(file);
    const content = parsed as LastUsageFile;
    if (content?.format !== FORMAT || content.version !== 1 || !isUses(content.uses)) {
      throw new Error(`${file} is not a p11kms last-usage file of version 1`);
    }
    applyUses(snapshot, content.uses);
    fileBytes = bytes;
  }
  return { fileBytes, journalGoodBytes: replayUses(snapshot, path.join(dataDir, LAST_USAGE_JOURNAL)) };
}

/** At opening (the directory lock held): cuts a torn last line off, so that the next follows the last good one. */
export function cutTornUses(dataDir: string, stored: StoredUses): void {
  cutJournalAt(path.join(dataDir, LAST_USAGE_JOURNAL), stored.journalGoodBytes);
}

function isUses(value: unknown): value is Record<string, LastUsageRecord> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function applyUses(snapshot: Snapshot, uses: Record<string, LastUsageRecord>): void {
  for (const [id, usage] of Object.entries(uses)) {
    const key = snapshot.keys.get(id);
    if (key && (!key.lastUsage || key.lastUsage.at < usage.at)) snapshot.keys.set(id, { ...key, lastUsage: usage });
  }
}

/** Applies the journal's lines in order; returns the length of the good ones (readGoodLines). */
function replayUses(snapshot: Snapshot, file: string): number {
  if (!fs.existsSync(file)) return 0;
  return readGoodLines(
    fs.readFileSync(file),
    usesOfLine,
    (from, to) => new Error(`${file} is damaged: bytes ${from}–${to} are not a line of last uses, and lines follow them. ${REFUSAL}`),
    (uses) => applyUses(snapshot, uses),
  );
}

function usesOfLine(line: string): Record<string, LastUsageRecord> | undefined {
  try {
    const parsed = JSON.parse(line) as { uses?: unknown } | null;
    return isUses(parsed?.uses) ? parsed.uses : undefined;
  } catch {
    return undefined;
  }
}

/**
 * Writes the last uses of usage flushes: the uses a flush changed as one journal line (one
 * fdatasync), or, once the journal has grown as long as last-usage.json (FOLD_FROM_BYTES at
 * least), every used key's last use as a new last-usage.json, after which the journal is
 * emptied. A crash between the two leaves lines whose uses the file holds already: applying
 * them again changes nothing.
 */
export class LastUsageWriter {
  private readonly journal: JournalWriter;
  private fileBytes: number;

  constructor(
    private readonly dataDir: string,
    stored: StoredUses,
    /** Each record's JSON, made once per (immutable) record by the store's writer. */
    private readonly jsonOf: (record: object) => string,
  ) {
    this.fileBytes = stored.fileBytes;
    this.journal = new JournalWriter(dataDir, stored.journalGoodBytes, LAST_USAGE_JOURNAL);
  }

  /** `changed`: the keys the flush wrote, by record name; `snapshot`: every key after it. */
  async write(snapshot: Snapshot, changed: ReadonlyMap<string, unknown>): Promise<void> {
    if (this.journal.appendable && this.journal.bytes < Math.max(FOLD_FROM_BYTES, this.fileBytes)) {
      const line = this.usesLine(changed);
      if (line) await this.journal.append(line);
      return;
    }
    this.fileBytes = await replaceFileDurably(path.join(this.dataDir, LAST_USAGE_FILE), this.fileChunks(snapshot));
    // Every use is in the file now: lines left by a failed reset are applied again harmlessly,
    // but a new line must not follow a cut-off one, so appends wait for a reset that works.
    await this.journal.reset().catch(() => this.journal.blockAppends());
  }

  close(): Promise<void> {
    return this.journal.close();
  }

  private usesLine(changed: ReadonlyMap<string, unknown>): string | undefined {
    const members: string[] = [];
    for (const [id, key] of changed) {
      const usage = (key as { lastUsage?: LastUsageRecord } | null)?.lastUsage;
      if (usage) members.push(`${JSON.stringify(id)}:${this.jsonOf(usage)}`);
    }
    return members.length > 0 ? `{"uses":{${members.join(',')}}}\n` : undefined;
  }

  /**
   * last-usage.json's bytes: the same text as JSON.stringify of a LastUsageFile, built a slice
   * of keys at a time from each use's own JSON. As one JSON.stringify of the whole file, a flush
   * with 100,000 used keys held the event loop 335–389 ms.
   */
  private async *fileChunks(snapshot: Snapshot): AsyncGenerator<Buffer> {
    let parts: string[] = [`{"format":${JSON.stringify(FORMAT)},"version":1,"uses":{`];
    let count = 0;
    for (const [id, key] of snapshot.keys) {
      if (!key.lastUsage) continue;
      parts.push(`${count === 0 ? '' : ','}${JSON.stringify(id)}:${this.jsonOf(key.lastUsage)}`);
      if (++count % USES_PER_TURN === 0) {
        yield Buffer.from(parts.join(''), 'utf8');
        parts = [];
      }
    }
    parts.push('}}');
    yield Buffer.from(parts.join(''), 'utf8');
  }
}
