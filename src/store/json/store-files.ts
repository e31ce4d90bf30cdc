import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { jsonFaultLocation } from '../../config/json-file';
import type { GrantRecord } from '../grant-record';
import type { AliasRecord, AuditOutboxEntry, CreationIntent, CustomKeyStoreRecord, KeyRecord, LastUsageRecord } from '../records';
import { aliasKey, emptySnapshot, recordKey, type Snapshot } from './snapshot';

// The JSON store's two files under the data directory: metadata.json holds every record;
// last-usage.json holds keys' last uses written since metadata.json last was.

const FORMAT = 'p11kms-metadata';
const FORMAT_VERSION = 1;
export const STORE_FILE = 'metadata.json';
export const LAST_USAGE_FILE = 'last-usage.json';
const LAST_USAGE_FORMAT = 'p11kms-last-usage';

interface LastUsageFile {
  format: typeof LAST_USAGE_FORMAT;
  version: 1;
  /** By `<region>/<key id>`. */
  uses: Record<string, LastUsageRecord>;
}

interface StoreFile {
  format: typeof FORMAT;
  version: number;
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

/** The records of a data directory: metadata.json, then last uses from last-usage.json where newer. */
export function readStoreFiles(dataDir: string): Snapshot {
  return withLastUses(readSnapshot(path.join(dataDir, STORE_FILE)), path.join(dataDir, LAST_USAGE_FILE));
}

function readSnapshot(file: string): Snapshot {
  if (!fs.existsSync(file)) return emptySnapshot();
  const parsed = parseStoreFile(file) as StoreFile;
  if (parsed?.format !== FORMAT || parsed.version !== FORMAT_VERSION) {
    throw new Error(`${file} is not a p11kms metadata file of version ${FORMAT_VERSION}`);
  }
  const lists = { keys: parsed.keys, aliases: parsed.aliases, grants: parsed.grants ?? [], customKeyStores: parsed.customKeyStores ?? [], intents: parsed.intents ?? [], auditOutbox: parsed.auditOutbox ?? [] };
  const broken = Object.entries(lists).find(([, list]) => !Array.isArray(list));
  if (broken) throw new Error(`${file} is damaged: its "${broken[0]}" is not a list. ${REFUSAL}`);
  return {
    keys: new Map(lists.keys.map((k) => [recordKey(k), k])),
    aliases: new Map(lists.aliases.map((a) => [aliasKey(a, a.aliasName), a])),
    grants: new Map(lists.grants.map((g) => [g.grantId, g])),
    customKeyStores: new Map(lists.customKeyStores.map((c) => [c.customKeyStoreId, c])),
    intents: new Map(lists.intents.map((i) => [i.creationId, i])),
    outbox: new Map(lists.auditOutbox.map((e) => [e.id, e])),
  };
}

/** p11kms writes its files whole (rename), so a damaged one was damaged outside p11kms. */
const REFUSAL = 'p11kms does not start on a damaged store (it would lose what the damage hid): restore the file from a backup.';

/** A store file's JSON; a damaged file is refused with its name, never read as less than it held. */
function parseStoreFile(file: string): unknown {
  const text = fs.readFileSync(file, 'utf8');
  try {
    return JSON.parse(text) as unknown;
  } catch (err) {
    throw new Error(`${file} is damaged: it is not valid JSON (${jsonFaultLocation(text, err)}; ${text.length} bytes). ${REFUSAL}`);
  }
}

/** The snapshot with each key's last use from last-usage.json where that one is newer. */
function withLastUses(snapshot: Snapshot, file: string): Snapshot {
  if (!fs.existsSync(file)) return snapshot;
  const parsed = parseStoreFile(file) as LastUsageFile;
  if (parsed?.format !== LAST_USAGE_FORMAT || parsed.version !== 1 || typeof parsed.uses !== 'object' || parsed.uses === null) {
    throw new Error(`${file} is not a p11kms last-usage file of version 1`);
  }
  for (const [id, usage] of Object.entries(parsed.uses)) {
    const key = snapshot.keys.get(id);
    if (key && (!key.lastUsage || key.lastUsage.at < usage.at)) snapshot.keys.set(id, { ...key, lastUsage: usage });
  }
  return snapshot;
}

/**
 * Writes the store's files crash-safely: a temporary file, fsynced, renamed over the old
 * one, then the directory fsynced, so a crash leaves the old or the new state.
 */
export class StoreFileWriter {
  /**
   * Each record's JSON, made when it is first written. Records are immutable (a change puts a
   * new object), so a commit serialises only what changed: with 100,000 keys, stringifying
   * the whole store took ~1.3 s on the event loop for every commit, the last-usage flush
   * every 5 s included.
   */
  private readonly serialized = new WeakMap<object, string>();

  constructor(private readonly dataDir: string) {}

  async writeRecords(snapshot: Snapshot): Promise<void> {
    await writeDurably(path.join(this.dataDir, STORE_FILE), this.fileChunks(snapshot));
  }

  async writeLastUses(snapshot: Snapshot): Promise<void> {
    const uses: Record<string, LastUsageRecord> = {};
    for (const [id, key] of snapshot.keys) if (key.lastUsage) uses[id] = key.lastUsage;
    const content: LastUsageFile = { format: LAST_USAGE_FORMAT, version: 1, uses };
    await writeDurably(path.join(this.dataDir, LAST_USAGE_FILE), JSON.stringify(content));
  }

  /**
   * The file's bytes: the same text as JSON.stringify of a StoreFile, built from each record's
   * own JSON (serialized) a slice of records at a time and written slice by slice, so requests
   * keep being answered while a large store is written (100,000 keys with an alias each: 97 MB),
   * and the whole file is never one more buffer in memory (nor copied into one).
   */
  private async *fileChunks(snapshot: Snapshot): AsyncGenerator<Buffer> {
    let parts: string[] = [`{"format":${JSON.stringify(FORMAT)},"version":${FORMAT_VERSION}`];
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
        let json = this.serialized.get(record);
        if (json === undefined) {
          json = JSON.stringify(record);
          this.serialized.set(record, json);
        }
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

/** Temporary files of writeDurably: `<file>.<random>.tmp`. */
const TEMP_FILE = /^(metadata|last-usage)\.json\.[0-9a-f]{16}\.tmp$/;

async function writeDurably(file: string, content: string | AsyncIterable<Buffer>): Promise<void> {
  const temp = `${file}.${randomBytes(8).toString('hex')}.tmp`;
  const handle = await fs.promises.open(temp, 'w', 0o600);
  try {
    // writeFile on a handle writes until every byte of every chunk is down or fails: one write()
    // call may write less without an error when the disk is nearly full. write-file-atomic made
    // that single call and renamed the short file over metadata.json, which then would not parse.
    await fs.promises.writeFile(handle, content);
    await handle.sync();
    await handle.close();
    await fs.promises.rename(temp, file);
  } catch (err) {
    await handle.close().catch(() => undefined);
    await fs.promises.rm(temp, { force: true }).catch(() => undefined);
    throw err;
  }
  // A rename is only durable once the directory entry is.
  const dir = await fs.promises.open(path.dirname(file), 'r');
  try {
    await dir.sync();
  } finally {
    await dir.close();
  }
}

/** Removes the temporary files of writes a crash interrupted (called with the directory lock held). */
export function removeUnfinishedWrites(dataDir: string): void {
  for (const name of fs.readdirSync(dataDir)) if (TEMP_FILE.test(name)) fs.rmSync(path.join(dataDir, name), { force: true });
}
