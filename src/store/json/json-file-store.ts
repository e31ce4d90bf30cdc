import * as fs from 'node:fs';
import * as path from 'node:path';
import type { Logger } from 'pino';
import * as lockfile from 'proper-lockfile';
import type { AliasTarget, KeyCount, KeyLocator, MetadataStore, StoreTransaction } from '../metadata-store';
import type { GrantRecord } from '../grant-record';
import type { AliasRecord, AuditOutboxEntry, CreationIntent, CustomKeyStoreRecord, KeyRecord, Scope } from '../records';
import { OverlayTransaction } from './overlay-transaction';
import { aliasKey, aliasTargetKey, byAliasName, byCreation, listCustomKeyStoresIn, listGrantsIn, recordKey, scopeKey, type Snapshot, targetOf } from './snapshot';
import { cutTornUses } from './last-usage-files';
import { readStoreFiles, removeUnfinishedWrites, StoreFileWriter, type StoredState } from './store-files';
import { CreationOrder, GroupedView, KeyCounts, KeyRegions, type RecordView } from './record-views';
import { type BatchWrites, cutTornTail, DEFAULT_JOURNAL_FROM_BYTES } from './store-journal';
import { forgetOwner, liveOwner, recordOwner } from './store-owner';

export interface JsonStoreOptions {
  /** Once metadata.json is this large, commits are appended to its journal instead (setting storeJournalFromBytes). */
  journalFromBytes?: number;
  /** Where a failed background rewrite of metadata.json is reported. */
  log?: Logger;
}

interface Pending {
  body: (tx: StoreTransaction) => Promise<unknown> | unknown;
  /** Sets only keys' lastUsage: a batch of these alone is written to last-usage.json. */
  lastUsageOnly?: boolean;
  resolve: (value: unknown) => void;
  reject: (err: unknown) => void;
}

/**
 * The default store: one JSON file under the data directory (and, once it is large, its journal).
 *
 * - Crash safety: every commit replaces the file atomically and durably or, once the file is
 *   large, is appended durably to its journal (StoreFileWriter), so a crash leaves the old or
 *   the new state.
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
  // Reads across many records, kept up to date by each commit (record-views.ts).
  private readonly keyOrder = new CreationOrder();
  private readonly keyCounts = new KeyCounts();
  private readonly keyRegions = new KeyRegions();
  private readonly aliasesByScope = new GroupedView<AliasRecord>(scopeKey, byAliasName);
  private readonly aliasesByKey = new GroupedView<AliasRecord>((a) => aliasTargetKey(targetOf(a)), byAliasName);
  private readonly grantsByKey = new GroupedView<GrantRecord>(recordKey, byCreation);
  private readonly keyViews: ReadonlyArray<RecordView<KeyRecord>> = [this.keyOrder, this.keyCounts];
  private readonly aliasViews: ReadonlyArray<RecordView<AliasRecord>> = [this.aliasesByScope, this.aliasesByKey];
  private queue: Pending[] = [];
  private writing: Promise<void> | undefined;
  private readonly files: StoreFileWriter;

  private constructor(
    dataDir: string,
    private readonly releaseLock: () => Promise<void>,
    stored: StoredState,
    options: JsonStoreOptions,
  ) {
    this.committed = stored.snapshot;
    this.files = new StoreFileWriter(dataDir, stored, options.journalFromBytes ?? DEFAULT_JOURNAL_FROM_BYTES, (err) =>
      options.log?.warn({ err }, 'metadata.json could not be rewritten from its journal; commits go on to the journal, and the rewrite is tried again later'),
    );
  }

  static async open(dataDir: string, options: JsonStoreOptions = {}): Promise<JsonFileStore> {
    fs.mkdirSync(dataDir, { recursive: true, mode: 0o700 });
    // Before the lock: a live holder's lock may look stale (store-owner.ts), and taking it over
    // would make the holder lose its lock directory too.
    const owner = liveOwner(dataDir);
    if (owner) throw new Error(`data directory ${dataDir} is in use by another p11kms process (pid ${owner.pid}, alive)`);
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
    const releaseAll = async () => {
      forgetOwner(dataDir);
      await release();
    };
    try {
      recordOwner(dataDir);
      removeUnfinishedWrites(dataDir);
      const stored = readStoreFiles(dataDir);
      const journal = cutTornTail(dataDir, stored.journal);
      cutTornUses(dataDir, stored.uses);
      return new JsonFileStore(dataDir, releaseAll, { ...stored, journal }, options);
    } catch (err) {
      await releaseAll();
      throw err;
    }
  }

  /**
   * Builds the views every key use reads (a key's aliases and grants, for its authorisation),
   * one step each: with 100,000 aliases the aliases-by-key view held up the first Encrypt after
   * a start 120–160 ms. Not the views of rarer reads (ListAliases: sorting 100,000 alias names
   * takes ~250 ms; /metrics' key counts ~50 ms; a multi-Region key's regions ~25 ms): a request
   * sent right after the start would wait for such a step without needing it.
   */
  warmUps(): Array<() => void> {
    return [() => void this.aliasesByKey.build(this.committed.aliases), () => void this.grantsByKey.build(this.committed.grants)];
  }

  async getKey(key: KeyLocator): Promise<KeyRecord | undefined> {
    return this.committed.keys.get(recordKey(key));
  }

  async listKeyRegions(keyId: string): Promise<KeyRecord[]> {
    return this.keyRegions.recordsOf(keyId, this.committed.keys);
  }

  async listKeys(scope?: Scope): Promise<KeyRecord[]> {
    return this.keyOrder.records(this.committed.keys, scope);
  }

  async countKeys(): Promise<KeyCount[]> {
    return this.keyCounts.counts(this.committed.keys);
  }

  async getAlias(scope: Scope, aliasName: string): Promise<AliasRecord | undefined> {
    return this.committed.aliases.get(aliasKey(scope, aliasName));
  }

  async listAliases(scope: Scope): Promise<AliasRecord[]> {
    return this.aliasesByScope.list(this.committed.aliases, scopeKey(scope));
  }

  async listKeyAliases(key: AliasTarget): Promise<AliasRecord[]> {
    return this.aliasesByKey.list(this.committed.aliases, aliasTargetKey(key));
  }

  async getGrant(grantId: string): Promise<GrantRecord | undefined> {
    return this.committed.grants.get(grantId);
  }

  async listGrants(key?: KeyLocator): Promise<GrantRecord[]> {
    if (key === undefined) return listGrantsIn(this.committed.grants, undefined);
    return this.grantsByKey.list(this.committed.grants, recordKey(key));
  }

  async getCustomKeyStore(id: string): Promise<CustomKeyStoreRecord | undefined> {
    return this.committed.customKeyStores.get(id);
  }

  async listCustomKeyStores(scope?: Scope): Promise<CustomKeyStoreRecord[]> {
    return listCustomKeyStoresIn(this.committed.customKeyStores, scope);
  }

  async listIntents(): Promise<CreationIntent[]> {
    return this.committed.intents.values();
  }

  async listOutboxEntries(): Promise<AuditOutboxEntry[]> {
    return this.committed.outbox.values().sort((a, b) => a.createdAt - b.createdAt);
  }

  transact<T>(body: (tx: StoreTransaction) => Promise<T> | T): Promise<T> {
    return this.enqueue(body, false);
  }

  /**
   * Last uses go to last-usage.journal (the uses the flush changed) and now and then
   * last-usage.json (every used key's last use) when nothing else is committed with them, not
   * into metadata.json: with 100,000 keys that file is 78 MB, and the usage flush runs every 5 s
   * while keys are used (last-usage-files.ts). Opening the store applies the newest use of each
   * key. Any other commit writes its keys to metadata.json (or its journal) with their last uses.
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
  asLeader<T>(_task: string, fn: (term: number) => Promise<T>): Promise<T | undefined> {
    return fn(1);
  }

  async close(): Promise<void> {
    while (this.writing) await this.writing;
    await this.files.close().catch(() => undefined);
    await this.releaseLock().catch(() => undefined);
  }

  /** Commits queued transactions in batches until the queue is empty. */
  private async drain(): Promise<void> {
    try {
      while (this.queue.length > 0) {
        const batch = this.queue.splice(0);
        const working = { ...this.committed };
        const owned = new Set<keyof Snapshot>();
        const writes: BatchWrites = {};
        const outcomes: Array<{ ok: true; value: unknown } | { ok: false; err: unknown }> = [];
        let changed = false;
        for (const pending of batch) {
          const tx = new OverlayTransaction(working, this.keyRegions);
          try {
            const value = await pending.body(tx);
            changed = tx.applyTo(working, owned, writes) || changed;
            outcomes.push({ ok: true, value });
          } catch (err) {
            outcomes.push({ ok: false, err });
          }
        }
        if (changed) {
          try {
            if (batch.every((p) => p.lastUsageOnly)) await this.files.writeLastUses(working, writes.keys ?? new Map());
            else await this.files.writeRecords(working, writes);
          } catch (err) {
            // Nothing of this batch is committed; every transaction in it fails.
            batch.forEach((p) => p.reject(err));
            continue;
          }
          const before = this.committed;
          this.committed = working;
          if (writes.keys) for (const view of this.keyViews) view.committed(writes.keys, before.keys, working.keys);
          if (writes.aliases) for (const view of this.aliasViews) view.committed(writes.aliases, before.aliases, working.aliases);
          if (writes.grants) this.grantsByKey.committed(writes.grants, before.grants);
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
}
