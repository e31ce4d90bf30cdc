import * as fs from 'node:fs';
import * as path from 'node:path';
import * as lockfile from 'proper-lockfile';
import writeFileAtomic from 'write-file-atomic';
import type { KeyLocator, MetadataStore, StoreTransaction } from './metadata-store';
import type { GrantRecord } from './grant-record';
import { type AliasRecord, type CreationIntent, type CustomKeyStoreRecord, isMultiRegion, type KeyRecord, type LastUsageRecord, type Scope, withSharedFields } from './records';

const FORMAT = 'p11kms-metadata';
const FORMAT_VERSION = 1;
const STORE_FILE = 'metadata.json';
/** Last uses written since the store file last was (see transactLastUsage). */
const LAST_USAGE_FILE = 'last-usage.json';
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
}

interface Snapshot {
  keys: Map<string, KeyRecord>;
  aliases: Map<string, AliasRecord>;
  grants: Map<string, GrantRecord>;
  customKeyStores: Map<string, CustomKeyStoreRecord>;
  intents: Map<string, CreationIntent>;
}

interface Pending {
  body: (tx: StoreTransaction) => Promise<unknown> | unknown;
  /** Sets only keys' lastUsage: a batch of these alone is written to last-usage.json. */
  lastUsageOnly?: boolean;
  resolve: (value: unknown) => void;
  reject: (err: unknown) => void;
}

const aliasKey = (scope: Scope, aliasName: string) => `${scope.region}/${scope.accountId}/${aliasName}`;
const recordKey = (key: KeyLocator) => `${key.region}/${key.keyId}`;

/**
 * The default store: one JSON file under the data directory.
 *
 * - Crash safety: every commit writes a temporary file, fsyncs it, renames it over the
 *   old one and fsyncs the directory, so a crash leaves the old or the new state.
 * - Ordering: transactions run one at a time; those that arrive while a write is in
 *   flight are committed together by the next write (group commit), so parallel
 *   requests do not each pay for an fsync.
 * - Readers see only committed state.
 * - A second process on the same directory is refused by an exclusive lock.
 */
export class JsonFileStore implements MetadataStore {
  /** The directory lock keeps every other process out. */
  readonly singleWriter = true;
  private committed: Snapshot;
  /**
   * Per-request reads (a key's grants, a scope's aliases: every authorised key use) answered
   * from lists built once per committed state, not by scanning every record: request cost
   * stays flat as keys, aliases and grants grow.
   */
  private views: { grantsByKey?: Map<string, GrantRecord[]>; aliasesByScope?: Map<string, AliasRecord[]>; keysById?: Map<string, KeyRecord[]> } = {};
  private queue: Pending[] = [];
  private writing: Promise<void> | undefined;
  /**
   * Each record's JSON, made when it is first written. Records are immutable (a change puts a
   * new object), so a commit serialises only what changed: with 100,000 keys, stringifying
   * the whole store took ~1.3 s on the event loop for every commit, the last-usage flush
   * every 5 s included.
   */
  private readonly serialized = new WeakMap<object, string>();

  private constructor(
    private readonly file: string,
    private readonly releaseLock: () => Promise<void>,
    initial: Snapshot,
  ) {
    this.committed = initial;
  }

  private get lastUsageFile(): string {
    return path.join(path.dirname(this.file), LAST_USAGE_FILE);
  }

  static async open(dataDir: string): Promise<JsonFileStore> {
    fs.mkdirSync(dataDir, { recursive: true, mode: 0o700 });
    const file = path.join(dataDir, STORE_FILE);
    let release: () => Promise<void>;
    try {
      release = await lockfile.lock(dataDir, {
        lockfilePath: path.join(dataDir, 'p11kms.lock'),
        // A crashed owner's lock goes stale after 3 s; retrying a little longer lets a
        // restart after kill -9 through while a live owner still refuses newcomers.
        stale: 3_000,
        update: 1_000,
        retries: { retries: 8, minTimeout: 500, maxTimeout: 500 },
        realpath: false,
      });
    } catch (err) {
      throw new Error(`data directory ${dataDir} is in use by another p11kms process (${(err as Error).message})`);
    }
    try {
      return new JsonFileStore(file, release, withLastUses(readSnapshot(file), path.join(dataDir, LAST_USAGE_FILE)));
    } catch (err) {
      await release();
      throw err;
    }
  }

  async getKey(key: KeyLocator): Promise<KeyRecord | undefined> {
    return this.committed.keys.get(recordKey(key));
  }

  async listKeyRegions(keyId: string): Promise<KeyRecord[]> {
    this.views.keysById ??= groupSorted(this.committed.keys.values(), (k) => k.keyId, byRegion);
    return [...(this.views.keysById.get(keyId) ?? [])];
  }

  async listKeys(scope?: Scope): Promise<KeyRecord[]> {
    const all = [...this.committed.keys.values()];
    const keys = scope ? all.filter((k) => k.region === scope.region && k.accountId === scope.accountId) : all;
    return keys.sort((a, b) => a.createdAt - b.createdAt || a.keyId.localeCompare(b.keyId));
  }

  async getAlias(scope: Scope, aliasName: string): Promise<AliasRecord | undefined> {
    return this.committed.aliases.get(aliasKey(scope, aliasName));
  }

  async listAliases(scope: Scope): Promise<AliasRecord[]> {
    this.views.aliasesByScope ??= groupSorted(this.committed.aliases.values(), (a) => scopeKey(a), byAliasName);
    return [...(this.views.aliasesByScope.get(scopeKey(scope)) ?? [])];
  }

  async getGrant(grantId: string): Promise<GrantRecord | undefined> {
    return this.committed.grants.get(grantId);
  }

  async listGrants(key?: KeyLocator): Promise<GrantRecord[]> {
    if (key === undefined) return listGrantsIn(this.committed.grants, undefined);
    this.views.grantsByKey ??= groupSorted(this.committed.grants.values(), (g) => recordKey(g), byCreation);
    return [...(this.views.grantsByKey.get(recordKey(key)) ?? [])];
  }

  async getCustomKeyStore(id: string): Promise<CustomKeyStoreRecord | undefined> {
    return this.committed.customKeyStores.get(id);
  }

  async listCustomKeyStores(scope?: Scope): Promise<CustomKeyStoreRecord[]> {
    return listCustomKeyStoresIn(this.committed.customKeyStores, scope);
  }

  async listIntents(): Promise<CreationIntent[]> {
    return [...this.committed.intents.values()];
  }

  transact<T>(body: (tx: StoreTransaction) => Promise<T> | T): Promise<T> {
    return this.enqueue(body, false);
  }

  /**
   * Last uses go to last-usage.json (every used key's last use) when nothing
   * else is committed with them, not into a rewrite of metadata.json: with 100,000 keys that
   * file is 78 MB, and the usage flush runs every 5 s while keys are used. Opening the store
   * applies the newer of the two. Any other commit writes metadata.json with the last uses in it.
   */
  transactLastUsage(body: (tx: StoreTransaction) => Promise<void> | void): Promise<void> {
    return this.enqueue(body, true);
  }

  private enqueue<T>(body: (tx: StoreTransaction) => Promise<T> | T, lastUsageOnly: boolean): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      this.queue.push({ body, lastUsageOnly, resolve: resolve as (v: unknown) => void, reject });
      this.writing ??= this.drain();
    });
  }

  /** One process owns the directory, so its background work is the whole deployment's. */
  asLeader<T>(_task: string, fn: () => Promise<T>): Promise<T | undefined> {
    return fn();
  }

  async close(): Promise<void> {
    while (this.writing) await this.writing;
    await this.releaseLock().catch(() => undefined);
  }

  /**
   * The file's bytes: the same text as JSON.stringify of a StoreFile, built from each record's
   * own JSON (serialized) a slice of records at a time, yielding to the event loop in between,
   * so requests keep being answered while a large store is written (100,000 keys: 78 MB).
   */
  private async fileBytes(snapshot: Snapshot): Promise<Buffer> {
    const chunks: Buffer[] = [];
    let parts: string[] = [`{"format":${JSON.stringify(FORMAT)},"version":${FORMAT_VERSION}`];
    const nextTurn = async () => {
      chunks.push(Buffer.from(parts.join(''), 'utf8'));
      parts = [];
      await new Promise<void>((resolve) => setImmediate(resolve));
    };
    const list = async (name: string, records: Iterable<object>) => {
      parts.push(`,${JSON.stringify(name)}:[`);
      let count = 0;
      for (const record of records) {
        let json = this.serialized.get(record);
        if (json === undefined) {
          json = JSON.stringify(record);
          this.serialized.set(record, json);
        }
        parts.push(count === 0 ? json : `,${json}`);
        if (++count % RECORDS_PER_TURN === 0) await nextTurn();
      }
      parts.push(']');
    };
    await list('keys', snapshot.keys.values());
    await list('aliases', snapshot.aliases.values());
    await list('grants', snapshot.grants.values());
    await list('customKeyStores', snapshot.customKeyStores.values());
    await list('intents', snapshot.intents.values());
    parts.push('}');
    chunks.push(Buffer.from(parts.join(''), 'utf8'));
    return Buffer.concat(chunks);
  }

  /** Commits queued transactions in batches until the queue is empty. */
  private async drain(): Promise<void> {
    try {
      while (this.queue.length > 0) {
        const batch = this.queue.splice(0);
        const working: Snapshot = {
          keys: new Map(this.committed.keys),
          aliases: new Map(this.committed.aliases),
          grants: new Map(this.committed.grants),
          customKeyStores: new Map(this.committed.customKeyStores),
          intents: new Map(this.committed.intents),
        };
        const outcomes: Array<{ ok: true; value: unknown } | { ok: false; err: unknown }> = [];
        let changed = false;
        for (const pending of batch) {
          const tx = new OverlayTransaction(working);
          try {
            const value = await pending.body(tx);
            changed = tx.applyTo(working) || changed;
            outcomes.push({ ok: true, value });
          } catch (err) {
            outcomes.push({ ok: false, err });
          }
        }
        if (changed) {
          try {
            if (batch.every((p) => p.lastUsageOnly)) await this.persistLastUses(working);
            else await this.persist(working);
          } catch (err) {
            // Nothing of this batch is committed; every transaction in it fails.
            batch.forEach((p) => p.reject(err));
            continue;
          }
          this.committed = working;
          this.views = {};
        }
        batch.forEach((p, i) => {
          const outcome = outcomes[i];
          if (outcome.ok) p.resolve(outcome.value);
          else p.reject(outcome.err);
        });
      }
    } finally {
      this.writing = undefined;
    }
  }

  private async persistLastUses(snapshot: Snapshot): Promise<void> {
    const uses: Record<string, LastUsageRecord> = {};
    for (const [id, key] of snapshot.keys) if (key.lastUsage) uses[id] = key.lastUsage;
    const content: LastUsageFile = { format: LAST_USAGE_FORMAT, version: 1, uses };
    await writeFileAtomic(this.lastUsageFile, JSON.stringify(content), { fsync: true, mode: 0o600 });
    await syncDirectory(this.lastUsageFile);
  }

  private async persist(snapshot: Snapshot): Promise<void> {
    await writeFileAtomic(this.file, await this.fileBytes(snapshot), { fsync: true, mode: 0o600 });
    await syncDirectory(this.file);
  }
}

/** Records serialised between two turns of the event loop while a commit builds the file. */
const RECORDS_PER_TURN = 2000;

const scopeKey = (scope: Scope) => `${scope.region}/${scope.accountId}`;
const byAliasName = (a: AliasRecord, b: AliasRecord) => a.aliasName.localeCompare(b.aliasName);
const byCreation = (a: GrantRecord, b: GrantRecord) => a.createdAt - b.createdAt || a.grantId.localeCompare(b.grantId);
const byRegion = (a: KeyRecord, b: KeyRecord) => a.region.localeCompare(b.region);

function groupSorted<T>(records: Iterable<T>, groupOf: (r: T) => string, order: (a: T, b: T) => number): Map<string, T[]> {
  const groups = new Map<string, T[]>();
  for (const r of records) {
    const group = groupOf(r);
    const list = groups.get(group);
    if (list) list.push(r);
    else groups.set(group, [r]);
  }
  for (const list of groups.values()) list.sort(order);
  return groups;
}

function listAliasesIn(aliases: Map<string, AliasRecord>, scope: Scope): AliasRecord[] {
  return [...aliases.values()].filter((a) => a.region === scope.region && a.accountId === scope.accountId).sort(byAliasName);
}

function listGrantsIn(grants: Map<string, GrantRecord>, key: KeyLocator | undefined): GrantRecord[] {
  return [...grants.values()].filter((g) => key === undefined || (g.keyId === key.keyId && g.region === key.region)).sort(byCreation);
}

/** Every region's record of `keyId`: a scan, needed only for multi-Region (`mrk-`) keys and deletions. */
function keyRegionsIn(keys: Iterable<KeyRecord>, keyId: string): KeyRecord[] {
  const found: KeyRecord[] = [];
  for (const k of keys) if (k.keyId === keyId) found.push(k);
  return found.sort(byRegion);
}

function listCustomKeyStoresIn(stores: Map<string, CustomKeyStoreRecord>, scope: Scope | undefined): CustomKeyStoreRecord[] {
  return [...stores.values()]
    .filter((c) => scope === undefined || (c.region === scope.region && c.accountId === scope.accountId))
    .sort((a, b) => a.createdAt - b.createdAt || a.customKeyStoreId.localeCompare(b.customKeyStoreId));
}

/** A rename is only durable once the directory entry is. */
async function syncDirectory(file: string): Promise<void> {
  const dir = await fs.promises.open(path.dirname(file), 'r');
  try {
    await dir.sync();
  } finally {
    await dir.close();
  }
}

/** The snapshot with each key's last use from last-usage.json where that one is newer. */
function withLastUses(snapshot: Snapshot, file: string): Snapshot {
  if (!fs.existsSync(file)) return snapshot;
  const parsed = JSON.parse(fs.readFileSync(file, 'utf8')) as LastUsageFile;
  if (parsed.format !== LAST_USAGE_FORMAT || parsed.version !== 1) throw new Error(`${file} is not a p11kms last-usage file of version 1`);
  for (const [id, usage] of Object.entries(parsed.uses)) {
    const key = snapshot.keys.get(id);
    if (key && (!key.lastUsage || key.lastUsage.at < usage.at)) snapshot.keys.set(id, { ...key, lastUsage: usage });
  }
  return snapshot;
}

function readSnapshot(file: string): Snapshot {
  if (!fs.existsSync(file)) return { keys: new Map(), aliases: new Map(), grants: new Map(), customKeyStores: new Map(), intents: new Map() };
  const parsed = JSON.parse(fs.readFileSync(file, 'utf8')) as StoreFile;
  if (parsed.format !== FORMAT || parsed.version !== FORMAT_VERSION) {
    throw new Error(`${file} is not a p11kms metadata file of version ${FORMAT_VERSION}`);
  }
  return {
    keys: new Map(parsed.keys.map((k) => [recordKey(k), k])),
    aliases: new Map(parsed.aliases.map((a) => [aliasKey(a, a.aliasName), a])),
    grants: new Map((parsed.grants ?? []).map((g) => [g.grantId, g])),
    customKeyStores: new Map((parsed.customKeyStores ?? []).map((c) => [c.customKeyStoreId, c])),
    intents: new Map((parsed.intents ?? []).map((i) => [i.creationId, i])),
  };
}

/** Applies a transaction's writes (null = deleted) to a map. */
function applyWrites<T>(target: Map<string, T>, writes: Map<string, T | null>): Map<string, T> {
  for (const [k, v] of writes) {
    if (v === null) target.delete(k);
    else target.set(k, v);
  }
  return target;
}

/** The committed records as a transaction sees them, its own writes included. */
function overlaid<T>(base: Map<string, T>, writes: Map<string, T | null>): Map<string, T> {
  return applyWrites(new Map(base), writes);
}

/** Collects a transaction's writes so they can be applied whole or dropped whole. */
class OverlayTransaction implements StoreTransaction {
  private readonly keys = new Map<string, KeyRecord | null>();
  private readonly aliases = new Map<string, AliasRecord | null>();
  private readonly grants = new Map<string, GrantRecord | null>();
  private readonly customKeyStores = new Map<string, CustomKeyStoreRecord | null>();
  private readonly intents = new Map<string, CreationIntent | null>();

  constructor(private readonly base: Snapshot) {}

  async getKey(key: KeyLocator): Promise<KeyRecord | undefined> {
    const own = this.keys.get(recordKey(key));
    return own === null ? undefined : (own ?? this.base.keys.get(recordKey(key)));
  }

  async listKeyRegions(keyId: string): Promise<KeyRecord[]> {
    return this.regionsOf(keyId);
  }

  putKey(record: KeyRecord): void {
    this.keys.set(recordKey(record), record);
    if (!isMultiRegion(record)) return;
    for (const sibling of this.regionsOf(record.keyId)) {
      if (sibling.region !== record.region) this.keys.set(recordKey(sibling), withSharedFields(sibling, record));
    }
  }

  deleteKey(key: KeyLocator): void {
    this.keys.set(recordKey(key), null);
  }

  /** The committed records of `keyId` with this transaction's writes applied. */
  private regionsOf(keyId: string): KeyRecord[] {
    const found = new Map<string, KeyRecord>();
    for (const k of keyRegionsIn(this.base.keys.values(), keyId)) found.set(recordKey(k), k);
    for (const [id, k] of this.keys) {
      if (k === null) found.delete(id);
      else if (k.keyId === keyId) found.set(id, k);
    }
    return [...found.values()].sort(byRegion);
  }

  async getAlias(scope: Scope, aliasName: string): Promise<AliasRecord | undefined> {
    const k = aliasKey(scope, aliasName);
    const own = this.aliases.get(k);
    return own === null ? undefined : (own ?? this.base.aliases.get(k));
  }

  async listAliases(scope: Scope): Promise<AliasRecord[]> {
    return listAliasesIn(overlaid(this.base.aliases, this.aliases), scope);
  }

  putAlias(record: AliasRecord): void {
    this.aliases.set(aliasKey(record, record.aliasName), record);
  }

  deleteAlias(scope: Scope, aliasName: string): void {
    this.aliases.set(aliasKey(scope, aliasName), null);
  }

  async getGrant(grantId: string): Promise<GrantRecord | undefined> {
    const own = this.grants.get(grantId);
    return own === null ? undefined : (own ?? this.base.grants.get(grantId));
  }

  async listGrants(key: KeyLocator): Promise<GrantRecord[]> {
    return listGrantsIn(overlaid(this.base.grants, this.grants), key);
  }

  putGrant(record: GrantRecord): void {
    this.grants.set(record.grantId, record);
  }

  deleteGrant(grantId: string): void {
    this.grants.set(grantId, null);
  }

  async getCustomKeyStore(id: string): Promise<CustomKeyStoreRecord | undefined> {
    const own = this.customKeyStores.get(id);
    return own === null ? undefined : (own ?? this.base.customKeyStores.get(id));
  }

  async listCustomKeyStores(): Promise<CustomKeyStoreRecord[]> {
    return listCustomKeyStoresIn(overlaid(this.base.customKeyStores, this.customKeyStores), undefined);
  }

  putCustomKeyStore(record: CustomKeyStoreRecord): void {
    this.customKeyStores.set(record.customKeyStoreId, record);
  }

  deleteCustomKeyStore(id: string): void {
    this.customKeyStores.set(id, null);
  }

  async getIntent(creationId: string): Promise<CreationIntent | undefined> {
    const own = this.intents.get(creationId);
    return own === null ? undefined : (own ?? this.base.intents.get(creationId));
  }

  putIntent(intent: CreationIntent): void {
    this.intents.set(intent.creationId, intent);
  }

  deleteIntent(creationId: string): void {
    this.intents.set(creationId, null);
  }

  /** Returns whether anything changed. */
  applyTo(target: Snapshot): boolean {
    applyWrites(target.keys, this.keys);
    applyWrites(target.aliases, this.aliases);
    applyWrites(target.grants, this.grants);
    applyWrites(target.customKeyStores, this.customKeyStores);
    applyWrites(target.intents, this.intents);
    return this.keys.size + this.aliases.size + this.grants.size + this.customKeyStores.size + this.intents.size > 0;
  }
}
