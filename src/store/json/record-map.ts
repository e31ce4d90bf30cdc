/** How many maps hold a kind's records: ~400 records each with 100,000 keys. */
const SHARDS = 256;

/**
 * The JSON store's records of one kind by name: a map whose copy costs little. A batch of
 * transactions changes a copy of the committed records, which readers keep using until the
 * batch is durable; copying a plain Map of 100,000 keys took ~30 ms of the event loop under
 * load, paid by every batch that changed a key (TagResource, the last-usage flush, …): a
 * TagResource loop cut Encrypt beside it from ~3,000 to 340–413/s. Here the records sit in SHARDS
 * maps chosen by a hash of the name; a copy shares them all, and either side copies a shard
 * (~400 records) the first time it changes it after the copy.
 *
 * Iteration follows the shards, not the order of insertion: every list the store answers is
 * sorted by its own order (creation, alias name, region).
 */
export class RecordMap<V> {
  private constructor(
    private readonly shards: Array<Map<string, V>>,
    /** 1 for each shard this map alone holds, which it may therefore change in place. */
    private readonly own: Uint8Array,
    private count: number,
  ) {}

  static of<V>(entries: Iterable<readonly [string, V]> = []): RecordMap<V> {
    const map = new RecordMap<V>(
      Array.from({ length: SHARDS }, () => new Map<string, V>()),
      new Uint8Array(SHARDS).fill(1),
      0,
    );
    for (const [name, value] of entries) map.set(name, value);
    return map;
  }

  get size(): number {
    return this.count;
  }

  get(name: string): V | undefined {
    return this.shards[shardOf(name)].get(name);
  }

  has(name: string): boolean {
    return this.shards[shardOf(name)].has(name);
  }

  set(name: string, value: V): this {
    const shard = this.writable(shardOf(name));
    const before = shard.size;
    shard.set(name, value);
    this.count += shard.size - before;
    return this;
  }

  delete(name: string): boolean {
    const index = shardOf(name);
    if (!this.shards[index].has(name)) return false;
    this.writable(index).delete(name);
    this.count--;
    return true;
  }

  /** A map with the same records; from now on neither changes a shard the other still holds. */
  copy(): RecordMap<V> {
    this.own.fill(0);
    return new RecordMap(this.shards.slice(), new Uint8Array(SHARDS), this.count);
  }

  // Arrays filled in place, not generators nor push: over 100,000 records a generator took
  // 15–21 ms and push 8–14 where a Map's own iterator takes 3, and the sweeps, ListKeys and the
  // file writes read every record.
  /** A new array of every record, which the caller may keep or sort. */
  values(): V[] {
    const out = new Array<V>(this.count);
    let next = 0;
    for (const shard of this.shards) for (const value of shard.values()) out[next++] = value;
    out.length = next;
    return out;
  }

  entries(): Array<[string, V]> {
    const out = new Array<[string, V]>(this.count);
    let next = 0;
    for (const shard of this.shards) for (const entry of shard.entries()) out[next++] = entry;
    out.length = next;
    return out;
  }

  [Symbol.iterator](): IterableIterator<[string, V]> {
    return this.entries()[Symbol.iterator]();
  }

  private writable(index: number): Map<string, V> {
    if (this.own[index] === 0) {
      this.shards[index] = new Map(this.shards[index]);
      this.own[index] = 1;
    }
    return this.shards[index];
  }
}

/** FNV-1a of the name, folded to a shard: names end in random ids, or in the user's own names. */
function shardOf(name: string): number {
  let hash = 0x811c9dc5;
  for (let i = 0; i < name.length; i++) hash = Math.imul(hash ^ name.charCodeAt(i), 0x01000193);
  return (hash >>> 0) % SHARDS;
}
