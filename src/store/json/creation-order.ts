import type { KeyRecord } from '../records';
import type { RecordMap } from './record-map';
import { recordKey } from './snapshot';

/** ListKeys' order: oldest first; a key's regions, created at once, by key id and region. */
export function byCreation(a: KeyRecord, b: KeyRecord): number {
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
export class CreationOrder {
  private names: string[] | undefined;
  /** The records of `names` as the last read found them, while the store's key map is that one. */
  private read: { keys: RecordMap<KeyRecord>; records: KeyRecord[] } | undefined;

  /** Every key record, oldest first, in a new array. */
  records(keys: RecordMap<KeyRecord>): KeyRecord[] {
    if (this.read?.keys !== keys) this.read = { keys, records: this.lookUp(keys) };
    return this.read.records.slice();
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
    const sorted = keys.values().sort(byCreation);
    this.names = sorted.map(recordKey);
    return sorted;
  }

  /** A commit's key writes (`null`: removed), with the records before and after it. */
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
    added.sort((a, b) => byCreation(a[1], b[1]));
    // New keys are nearly always the newest: appended. Otherwise each goes where it belongs.
    const merged: string[] = [];
    let next = 0;
    for (const [name, record] of added) {
      let low = next;
      let high = kept.length;
      while (low < high) {
        const middle = (low + high) >>> 1;
        if (byCreation(after.get(kept[middle])!, record) <= 0) low = middle + 1;
        else high = middle;
      }
      for (; next < low; next++) merged.push(kept[next]);
      merged.push(name);
    }
    for (; next < kept.length; next++) merged.push(kept[next]);
    this.names = merged;
  }
}
