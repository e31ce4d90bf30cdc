import type { KeyCount } from '../metadata-store';
import type { KeyRecord, Scope } from '../records';
import type { RecordMap } from './record-map';
import { byRegion, groupSorted, recordKey, scopeKey } from './snapshot';

/**
 * What the JSON store reads across many records (keys oldest first, a key's regions, the key
 * counts, a scope's or a key's aliases, a key's grants), kept up to date commit by commit
 * instead of being rebuilt from every record after each commit that changed one: with 100,000
 * keys and aliases a rebuild took 60–350 ms of the event loop, paid by the next request that
 * read it (every authorised key use reads its key's aliases and grants), and the last-usage
 * flush changes keys every few seconds while they are used. Each view is built by its first read
 * or by the warm-up after the service listens (JsonFileStore.warmUps), whichever comes first.
 */
export interface RecordView<T> {
  /** A commit's writes of this kind (`null`: removed), with the records before and after it. */
  committed(writes: ReadonlyMap<string, unknown>, before: RecordMap<T>, after: RecordMap<T>): void;
}

/** ListKeys' order: oldest first; a key's regions, created at once, by key id and region. */
function oldestFirst(a: KeyRecord, b: KeyRecord): number {
  return a.createdAt - b.createdAt || (a.keyId === b.keyId ? (a.region < b.region ? -1 : a.region > b.region ? 1 : 0) : a.keyId.localeCompare(b.keyId));
}

/**
 * The names of the JSON store's key records, oldest first, kept from one commit to the next.
 * The record maps iterate by shard, in no order, and sorting 100,000 records again at every
 * listKeys took 120–240 ms (ListKeys pages, both sweeps every minute, reconciliation), where a
 * Map's insertion order had made the same sort a pass over sorted records (32–45 ms). A key's
 * createdAt never changes, so a commit that only changes keys leaves the order as it is, and one
 * that adds or removes keys merges its few names into it.
 */
export class CreationOrder implements RecordView<KeyRecord> {
  private names: string[] | undefined;
  /** The records of `names` as the last read found them (and by scope), while the store's key map is that one. */
  private read: { keys: RecordMap<KeyRecord>; records: KeyRecord[]; byScope: Map<string, KeyRecord[]> } | undefined;

  /** Every key record (of one region and account, with `scope`), oldest first, in a new array. */
  records(keys: RecordMap<KeyRecord>, scope?: Scope): KeyRecord[] {
    if (this.read?.keys !== keys) this.read = { keys, records: this.lookUp(keys), byScope: new Map() };
    if (!scope) return this.read.records.slice();
    // ListKeys pages through one scope: filtering 100,000 records took ~35 ms a page.
    const id = scopeKey(scope);
    let inScope = this.read.byScope.get(id);
    if (!inScope) this.read.byScope.set(id, (inScope = this.read.records.filter((k) => k.region === scope.region && k.accountId === scope.accountId)));
    return inScope.slice();
  }

  private lookUp(keys: RecordMap<KeyRecord>): KeyRecord[] {
    const names = this.names;
    if (names && names.length === keys.size) {
      const out = new Array<KeyRecord>(names.length);
      let i = 0;
      for (; i < names.length; i++) {
        const record = keys.get(names[i]);
        if (!record) break;
        out[i] = record;
      }
      if (i === names.length) return out;
    }
    // First read, or (never expected) an order that lost track of the records: sort afresh.
    const sorted = keys.values().sort(oldestFirst);
    this.names = sorted.map(recordKey);
    return sorted;
  }

  committed(writes: ReadonlyMap<string, unknown>, before: RecordMap<KeyRecord>, after: RecordMap<KeyRecord>): void {
    const names = this.names;
    if (!names) return;
    const removed = new Set<string>();
    const added: Array<[string, KeyRecord]> = [];
    for (const [name, value] of writes) {
      const record = value as KeyRecord | null;
      const earlier = before.get(name);
      if (earlier && (record === null || record.createdAt !== earlier.createdAt)) removed.add(name);
      if (record && (!earlier || record.createdAt !== earlier.createdAt)) added.push([name, record]);
    }
    if (removed.size === 0 && added.length === 0) return;
    const kept = removed.size === 0 ? names : names.filter((n) => !removed.has(n));
    added.sort((a, b) => oldestFirst(a[1], b[1]));
    // New keys are nearly always the newest: appended. Otherwise each goes where it belongs.
    const merged: string[] = [];
    let next = 0;
    for (const [name, record] of added) {
      let low = next;
      let high = kept.length;
      while (low < high) {
        const middle = (low + high) >>> 1;
        const there = after.get(kept[middle]);
        // Never expected (the order lost track of a record): the next read sorts afresh. A view must not fail a commit.
        if (!there) return void (this.names = undefined);
        if (oldestFirst(there, record) <= 0) low = middle + 1;
        else high = middle;
      }
      for (; next < low; next++) merged.push(kept[next]);
      merged.push(name);
    }
    for (; next < kept.length; next++) merged.push(kept[next]);
    this.names = merged;
  }
}

/**
 * The regions any key record has been in: a key's records are found by looking up its id in
 * each (a deployment has a few), where grouping 100,000 records by key id took 120–180 ms.
 * Only grows: a region that no longer holds a key costs one lookup that finds nothing. Fed by
 * each transaction as it is applied (a later transaction of the same batch reads its records),
 * so a batch that then fails to commit may leave a region here that holds nothing, as above.
 */
export class KeyRegions {
  private regions: Set<string> | undefined;
  /**
   * Regions of records applied before the first read built the set: that read may come from
   * the committed map while a batch that adds a region waits for its write, and would
   * otherwise leave that region out for good.
   */
  private readonly appliedBeforeBuilt = new Set<string>();

  /** Every region's record of `keyId` in `keys`, by region. */
  recordsOf(keyId: string, keys: RecordMap<KeyRecord>): KeyRecord[] {
    this.regions ??= new Set([...this.appliedBeforeBuilt, ...keys.values().map((k) => k.region)]);
    const found: KeyRecord[] = [];
    for (const region of this.regions) {
      const record = keys.get(recordKey({ region, keyId }));
      if (record) found.push(record);
    }
    return found.sort(byRegion);
  }

  applied(writes: ReadonlyMap<string, KeyRecord | null>): void {
    const regions = this.regions ?? this.appliedBeforeBuilt;
    for (const record of writes.values()) if (record) regions.add(record.region);
  }
}

/** How many keys are in each key state and spec (every /metrics scrape reads it). */
export class KeyCounts implements RecordView<KeyRecord> {
  private byState: Map<string, Map<string, number>> | undefined;

  counts(keys: RecordMap<KeyRecord>): KeyCount[] {
    if (!this.byState) {
      this.byState = new Map();
      for (const key of keys.values()) this.add(key, 1);
    }
    return [...this.byState].flatMap(([keyState, bySpec]) => [...bySpec].map(([keySpec, count]) => ({ keyState, keySpec, count })));
  }

  committed(writes: ReadonlyMap<string, unknown>, before: RecordMap<KeyRecord>): void {
    if (!this.byState) return;
    for (const [name, record] of writes) {
      const earlier = before.get(name);
      if (earlier) this.add(earlier, -1);
      if (record) this.add(record as KeyRecord, 1);
    }
  }

  // By state, then spec: no string built per key.
  private add({ keyState, keySpec }: KeyRecord, change: number): void {
    let bySpec = this.byState!.get(keyState);
    if (!bySpec) this.byState!.set(keyState, (bySpec = new Map()));
    const count = (bySpec.get(keySpec) ?? 0) + change;
    if (count !== 0) bySpec.set(keySpec, count);
    else if (bySpec.delete(keySpec) && bySpec.size === 0) this.byState!.delete(keyState);
  }
}

/** Records grouped (by scope, by key) and each group in order: a scope's aliases, a key's grants. */
export class GroupedView<T> implements RecordView<T> {
  private groups: Map<string, T[]> | undefined;

  constructor(
    private readonly groupOf: (record: T) => string,
    private readonly order: (a: T, b: T) => number,
  ) {}

  /** One group's records in order, in a new array. */
  list(records: RecordMap<T>, group: string): T[] {
    return [...(this.build(records).get(group) ?? [])];
  }

  build(records: RecordMap<T>): ReadonlyMap<string, readonly T[]> {
    return (this.groups ??= groupSorted(records.values(), this.groupOf, this.order));
  }

  committed(writes: ReadonlyMap<string, unknown>, before: RecordMap<T>): void {
    if (!this.groups) return;
    for (const [name, record] of writes) {
      const earlier = before.get(name);
      if (earlier) this.remove(earlier);
      if (record) this.insert(record as T);
    }
  }

  // The lists hold the very records of the map (records are never changed in place, a change
  // puts a new one), so the record a write replaces is found by identity.
  private remove(record: T): void {
    const group = this.groupOf(record);
    const list = this.groups!.get(group);
    if (!list) return;
    let at = this.firstNotBefore(list, record);
    while (at < list.length && list[at] !== record && this.order(list[at], record) === 0) at++;
    if (list[at] !== record) at = list.indexOf(record);
    if (at < 0) return;
    list.splice(at, 1);
    if (list.length === 0) this.groups!.delete(group);
  }

  private insert(record: T): void {
    const group = this.groupOf(record);
    const list = this.groups!.get(group);
    if (!list) return void this.groups!.set(group, [record]);
    list.splice(this.firstNotBefore(list, record), 0, record);
  }

  private firstNotBefore(list: readonly T[], record: T): number {
    let low = 0;
    let high = list.length;
    while (low < high) {
      const middle = (low + high) >>> 1;
      if (this.order(list[middle], record) < 0) low = middle + 1;
      else high = middle;
    }
    return low;
  }
}
