import type { KeyLocator, StoreTransaction } from '../metadata-store';
import type { GrantRecord } from '../grant-record';
import { IdKeyedWrites } from '../id-keyed-writes';
import type { RecordMap } from './record-map';
import { type AliasRecord, type CreationIntent, type CustomKeyStoreRecord, isMultiRegion, type KeyRecord, type Scope, withSharedFields } from '../records';
import { aliasKey, byRegion, listAliasesIn, listCustomKeyStoresIn, listGrantsIn, recordKey, type Snapshot } from './snapshot';
import type { KeyRegions } from './record-views';
import type { BatchWrites } from './store-journal';

/** Applies a transaction's writes (null = deleted) to a map. */
export function applyWrites<T>(target: RecordMap<T>, writes: Map<string, T | null>): RecordMap<T> {
  for (const [k, v] of writes) {
    if (v === null) target.delete(k);
    else target.set(k, v);
  }
  return target;
}

/** The committed records as a transaction sees them, its own writes included. */
function overlaid<T>(base: RecordMap<T>, writes: Map<string, T | null>): RecordMap<T> {
  return applyWrites(base.copy(), writes);
}

/** Collects a transaction's writes so they can be applied whole or dropped whole. */
export class OverlayTransaction extends IdKeyedWrites implements StoreTransaction {
  private readonly keys = new Map<string, KeyRecord | null>();
  private readonly aliases = new Map<string, AliasRecord | null>();
  private readonly grants = new Map<string, GrantRecord | null>();

  constructor(
    private readonly base: Snapshot,
    private readonly keyRegions: KeyRegions,
  ) {
    super();
  }

  async getKey(key: KeyLocator): Promise<KeyRecord | undefined> {
    return seen(this.keys, this.base.keys, recordKey(key));
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
    for (const k of this.keyRegions.recordsOf(keyId, this.base.keys)) found.set(recordKey(k), k);
    for (const [id, k] of this.keys) {
      if (k === null) found.delete(id);
      else if (k.keyId === keyId) found.set(id, k);
    }
    return [...found.values()].sort(byRegion);
  }

  async getAlias(scope: Scope, aliasName: string): Promise<AliasRecord | undefined> {
    return seen(this.aliases, this.base.aliases, aliasKey(scope, aliasName));
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
    return seen(this.grants, this.base.grants, grantId);
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
    return seen(this.customKeyStores, this.base.customKeyStores, id);
  }

  async listCustomKeyStores(): Promise<CustomKeyStoreRecord[]> {
    return listCustomKeyStoresIn(overlaid(this.base.customKeyStores, this.customKeyStores), undefined);
  }

  async keysInCustomKeyStore(customKeyStoreId: string): Promise<KeyRecord[]> {
    return overlaid(this.base.keys, this.keys).values().filter((k) => k.customKeyStoreId === customKeyStoreId);
  }

  async getIntent(creationId: string): Promise<CreationIntent | undefined> {
    return seen(this.intents, this.base.intents, creationId);
  }

  /**
   * Applies the writes to a batch's working records; returns whether there were any.
   * The working records share every map with the committed ones (which readers still use) until
   * a transaction of the batch first writes to that kind: `owned` holds the kinds copied so far.
   * A copy shares the records themselves too (record-map.ts) and copies only what it changes.
   * `batch` collects the batch's writes (the last per record winning): its journal entry.
   */
  applyTo(target: Snapshot, owned: Set<keyof Snapshot>, batch: BatchWrites): boolean {
    const apply = <K extends keyof Snapshot>(kind: K, writes: Map<string, unknown>) => {
      if (writes.size === 0) return;
      if (!owned.has(kind)) {
        target[kind] = (target[kind] as RecordMap<unknown>).copy() as Snapshot[K];
        owned.add(kind);
      }
      applyWrites(target[kind] as RecordMap<unknown>, writes);
      const recorded = (batch[kind] ??= new Map());
      for (const [name, record] of writes) recorded.set(name, record);
    };
    apply('keys', this.keys);
    this.keyRegions.applied(this.keys);
    apply('aliases', this.aliases);
    apply('grants', this.grants);
    apply('customKeyStores', this.customKeyStores);
    apply('intents', this.intents);
    apply('outbox', this.outbox);
    return this.keys.size + this.aliases.size + this.grants.size + this.idKeyedWriteCount() > 0;
  }
}

/** A record as the transaction sees it: its own write (null = deleted) or else the committed one. */
function seen<T>(writes: Map<string, T | null>, base: RecordMap<T>, name: string): T | undefined {
  const own = writes.get(name);
  return own === null ? undefined : (own ?? base.get(name));
}
