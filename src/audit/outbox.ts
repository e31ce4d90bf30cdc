import { AsyncLocalStorage } from 'node:async_hooks';
import { randomUUID } from 'node:crypto';
import type { Logger } from 'pino';
import type { Clock } from '../clock';
import { BACKGROUND_TASK } from '../lifecycle/leadership';
import type { MetadataStore, StoreTransaction } from '../store/metadata-store';
import { aliasName, customKeyStoreName, grantName, keyName } from '../store/record-names';
import type { AuditOutboxEntry, KeyRecord } from '../store/records';
import { findChains } from './chains';
import { type AuditEvent, READ_ONLY_USE } from './event';
import { queryChains } from './query';

/** What a trail the outbox delivers to offers: records, and writing again after a write failure. */
export interface OutboxTrail {
  record(event: AuditEvent): Promise<void>;
  recover(): Promise<void>;
}


/**
 * Records are looked for in the trail from this long before the oldest entry's commit: a
 * request's record is timed after its commit (by the same clock), to the second; the margin
 * covers a clock stepped back meanwhile.
 */
const SCAN_MARGIN_MS = 3_600_000;

/** Says, in a record delivered from the outbox, why it reads as it does. */
const DELIVERED_NOTE =
  "committed with its change and written to the trail from the store's audit outbox: the record the request (or service action) would have written itself was never written (the process ended between the change and its record, or the trail could not be written), so its outcome as answered (if it was) is not known here";

/** Which key-related records a transaction wrote, the keys among them, and the key records it put. */
interface Changes {
  names: Set<string>;
  keys: Map<string, { accountId: string; type: 'AWS::KMS::Key'; ARN: string }>;
  written: Map<string, KeyRecord>;
}

/**
 * The records a change would leave without its own: given the key records written so far (a
 * rotation's new material). The first is the call's (or service action's) own, under the id
 * `within` was given; the others (ReplicateKey's CreateKey in the replica's region, …) under
 * the eventIDs their own records will carry.
 */
export type ProvisionalRecord = (written: readonly KeyRecord[]) => AuditEvent | readonly AuditEvent[];

/** A request (or service action) whose changes carry its record in their transactions. */
interface Recorded {
  id: string;
  provisional: ProvisionalRecord;
  /** What its committed transactions changed so far. */
  committed: Changes;
  /** An entry was committed for it (its removal is then due once the record is in the trail). */
  entryCommitted: boolean;
  /**
   * The ids of the entries its transactions wrote (one per record), noted before they commit:
   * an entry of a request still in flight is never delivered behind its back.
   */
  entryIds: Set<string>;
  /** Cleared once its own record was written (or refused): later transactions are not its own. */
  active: boolean;
}

const TEST_CRASH_POINT = process.env.NODE_ENV === 'test' ? process.env.P11KMS_TEST_CRASH_BEFORE_RECORD : undefined;

/**
 * The audit outbox (docs/audit.md, "Crash behaviour"). Every transaction that changes a key,
 * alias, grant or custom key store on behalf of a request (or of a service action such as the
 * deletion sweeper's DeleteKey) commits, in the same transaction, the records that request
 * would leave if its own were never written (every one: ReplicateKey's CreateKey in the
 * replica's region too), each under the eventID its own record carries. Once its records are
 * in the trail the entries are removed, by the next transaction (it rides along).
 * Entries left behind (a crash between commit and record, a trail that could not be written)
 * are written to the trail by `deliver` — at start-up before requests are served, then
 * periodically — unless a record with their id is already there (a crash between record and
 * removal), then removed: every committed change has its record in the trail once.
 */
export class AuditOutbox {
  /** This process's name on its entries. */
  readonly owner = randomUUID();
  private readonly requests = new AsyncLocalStorage<Recorded>();
  /** Scopes of `within` not yet settled: the storage is disabled when none is. */
  private openScopes = 0;
  /** By eventID: requests whose own record has not been attempted yet. */
  private readonly inFlight = new Map<string, Recorded>();
  /** Entries whose records are in the trail, to remove in the next transaction. */
  private readonly removable = new Set<string>();
  private delivering: Promise<void> | undefined;
  private timer: NodeJS.Timeout | undefined;

  constructor(
    /** The store itself, not wrapped: the outbox's own removals carry no entry. */
    private readonly store: MetadataStore,
    private readonly clock: Clock,
    private readonly log: Logger,
    /** The audit directory: its chain, or one chain per process beneath it. */
    private readonly auditRoot: string,
  ) {}

  /** The store as requests see it: each changing transaction carries the request's record. */
  wrap<S extends MetadataStore>(store: S): S {
    const transact = <T>(body: (tx: StoreTransaction) => Promise<T> | T) => this.transact(store, body);
    // The view reading around a cache writes through the same transactions.
    const fresh = store.fresh ? () => this.wrap(store.fresh!()) : undefined;
    return new Proxy(store, {
      get(target, property, receiver) {
        if (property === 'transact') return transact;
        if (property === 'fresh') return fresh;
        return Reflect.get(target, property, receiver) as unknown;
      },
    });
  }

  /**
   * Runs `fn` (an operation) so that its transactions commit `provisional()` under `eventId()`
   * (the eventID its own record will carry). `settle` must follow once its own record was written or refused.
   */
  within<T>(eventId: () => string, provisional: ProvisionalRecord, fn: () => Promise<T>, operation?: string): Promise<T> {
    // Key use (Encrypt, Sign, …) writes nothing: no scope, and no eventID derived for one (a
    // hash). AsyncLocalStorage makes Node 20 track every promise the process creates while it is
    // enabled (measured: ~10 % more CPU per Encrypt), so it is enabled only while a scope is
    // open and disabled when the last closes.
    if (operation !== undefined && READ_ONLY_USE.has(operation)) return fn();
    return this.scoped(eventId(), provisional, fn);
  }

  private async scoped<T>(id: string, provisional: ProvisionalRecord, fn: () => Promise<T>): Promise<T> {
    const recorded: Recorded = { id, provisional, committed: emptyChanges(), entryCommitted: false, entryIds: new Set([id]), active: true };
    this.inFlight.set(id, recorded);
    this.openScopes++;
    try {
      return await this.requests.run(recorded, fn);
    } finally {
      if (--this.openScopes === 0) this.requests.disable();
    }
  }

  /** The request's records were all written (`written`) or one was refused: its entries, if any, go or stay for `deliver`. */
  settle(id: string, written: boolean): void {
    const recorded = this.inFlight.get(id);
    if (!recorded) return;
    this.inFlight.delete(id);
    recorded.active = false;
    if (written && recorded.entryCommitted) for (const entryId of recorded.entryIds) this.removable.add(entryId);
  }

  /**
   * Test-only: the process dies here (after the change is committed, before this record), as
   * kill -9 would. The point names the record by `eventName`, or by `eventName@awsRegion` for
   * one of a call's records that share a name (UpdatePrimaryRegion's two).
   */
  crashPointForTests(event: { eventName: string; awsRegion: string }): void {
    if (TEST_CRASH_POINT === undefined) return;
    if (TEST_CRASH_POINT === event.eventName || TEST_CRASH_POINT === `${event.eventName}@${event.awsRegion}`) process.kill(process.pid, 'SIGKILL');
  }

  private async transact<T>(store: MetadataStore, body: (tx: StoreTransaction) => Promise<T> | T): Promise<T> {
    const found = this.requests.getStore();
    const request = found?.active ? found : undefined;
    const removing = [...this.removable];
    this.removable.clear();
    let changes: Changes | undefined;
    try {
      const value = await store.transact(async (tx) => {
        const attempt = emptyChanges();
        changes = attempt;
        const result = await body(request ? tracking(tx, attempt) : tx);
        if (request && attempt.names.size > 0) {
          for (const entry of this.entriesOf(request, attempt)) {
            request.entryIds.add(entry.id);
            tx.putOutboxEntry(entry);
          }
        }
        for (const id of removing) tx.deleteOutboxEntry(id);
        return result;
      });
      if (request && changes && changes.names.size > 0) {
        for (const n of changes.names) request.committed.names.add(n);
        for (const [arn, r] of changes.keys) request.committed.keys.set(arn, r);
        for (const [name, r] of changes.written) request.committed.written.set(name, r);
        request.entryCommitted = true;
      }
      return value;
    } catch (err) {
      for (const id of removing) this.removable.add(id);
      throw err;
    }
  }

  /** One entry per record the request would leave: its own names every key it wrote so far; each notes why it is delivered. */
  private entriesOf(request: Recorded, attempt: Changes): AuditOutboxEntry[] {
    const [own, ...following] = [request.provisional([...new Map([...request.committed.written, ...attempt.written]).values()])].flat();
    const keys = new Map([...request.committed.keys, ...attempt.keys]);
    for (const r of own.resources ?? []) keys.set(r.ARN, r);
    const names = [...new Set([...request.committed.names, ...attempt.names])];
    const entry = (event: AuditEvent): AuditOutboxEntry => ({
      id: event.eventID,
      owner: this.owner,
      createdAt: this.clock.now(),
      event: { ...event, additionalEventData: { ...event.additionalEventData, outbox: DELIVERED_NOTE, committedRecords: names } },
    });
    return [
      entry({ ...own, eventID: request.id, ...(keys.size > 0 ? { resources: [...keys.values()] } : {}) }),
      ...following.map(entry),
    ];
  }

  /**
   * Writes the records of entries no running request will write: this process's own whose
   * record was refused, and (in one process of a deployment) those of dead processes.
   * One pass at a time.
   */
  deliver(trail: OutboxTrail): Promise<void> {
    this.delivering ??= this.deliverOnce(trail).finally(() => (this.delivering = undefined));
    return this.delivering;
  }

  /** Delivers every `intervalMs` from now on (entries of a trail that failed, of processes that died meanwhile). */
  start(trail: OutboxTrail, intervalMs: number): void {
    this.timer = setInterval(() => void this.deliver(trail).catch((err: unknown) => this.log.error({ err: (err as Error).message }, 'audit outbox delivery failed; the next one tries again')), intervalMs);
    this.timer.unref();
  }

  /** Stops delivering and removes the entries whose records are in the trail. */
  async close(): Promise<void> {
    clearInterval(this.timer);
    await this.delivering?.catch(() => undefined);
    const removing = [...this.removable];
    this.removable.clear();
    if (removing.length > 0) await this.store.transact((tx) => removing.forEach((id) => tx.deleteOutboxEntry(id))).catch(() => undefined);
  }

  private async deliverOnce(trail: OutboxTrail): Promise<void> {
    const entries = await this.store.listOutboxEntries();
    if (entries.length === 0) return;
    // Read after listing: a request's entry ids are noted before its entries commit, and once it
    // settles they are removable (or its records were refused, and they are this pass's).
    const inFlight = new Set([...this.inFlight.values()].flatMap((r) => [...r.entryIds]));
    await this.deliverEntries(
      trail,
      // Entries whose records are known written leave with the next transaction: no search needed.
      entries.filter((e) => e.owner === this.owner && !inFlight.has(e.id) && !this.removable.has(e.id)),
    );
    const others = entries.filter((e) => e.owner !== this.owner);
    if (others.length === 0) return;
    // Other processes' entries: by the one process that runs the deployment's background work.
    await this.store.asLeader(BACKGROUND_TASK, async () => {
      const alive = new Map<string, boolean>();
      const dead: AuditOutboxEntry[] = [];
      for (const e of others) {
        if (!alive.has(e.owner)) alive.set(e.owner, (await this.store.processLiveness?.isAlive(e.owner)) ?? false);
        if (!alive.get(e.owner)) dead.push(e);
      }
      const living = others.length - dead.length;
      if (living > 0) this.log.debug({ entries: living }, 'audit outbox: entries of live processes are left to them');
      await this.deliverEntries(trail, dead);
    });
  }

  private async deliverEntries(trail: OutboxTrail, entries: readonly AuditOutboxEntry[]): Promise<void> {
    if (entries.length === 0) return;
    // After a write failure the bytes of refused records must be described first, so that
    // the search below leaves them out (as query and verify do): they are not in the chain.
    await trail.recover();
    const wanted = new Set(entries.map((e) => e.id));
    const inTrail = new Set<string>();
    const from = Math.min(...entries.map((e) => e.createdAt)) - SCAN_MARGIN_MS;
    for (const r of queryChains(findChains([this.auditRoot], { required: false }), { from })) {
      if (wanted.has(r.eventID as string)) inTrail.add(r.eventID as string);
    }
    const written: string[] = [];
    for (const e of entries) {
      if (inTrail.has(e.id)) continue;
      await trail.record(e.event as unknown as AuditEvent);
      written.push(e.id);
    }
    await this.store.transact((tx) => entries.forEach((e) => tx.deleteOutboxEntry(e.id)));
    this.log.warn(
      { written, alreadyInTrail: [...inTrail] },
      'audit records of committed changes written from the audit outbox (their own records were never written)',
    );
  }
}

function emptyChanges(): Changes {
  return { names: new Set(), keys: new Map(), written: new Map() };
}

/** `tx`, noting every key, alias, grant and custom key store it writes (intents are the custody protocol's, not changes). */
function tracking(tx: StoreTransaction, changes: Changes): StoreTransaction {
  const key = (k: { keyId: string; region: string; accountId?: string; arn?: string }) => {
    changes.names.add(keyName(k));
    const arn = k.arn ?? (k.accountId ? `arn:aws:kms:${k.region}:${k.accountId}:key/${k.keyId}` : undefined);
    if (arn && k.accountId) changes.keys.set(arn, { accountId: k.accountId, type: 'AWS::KMS::Key', ARN: arn });
  };
  const noting: Partial<StoreTransaction> = {
    putKey: (r) => (key(r), changes.written.set(keyName(r), r), tx.putKey(r)),
    deleteKey: (k) => (key(k as Partial<KeyRecord> & typeof k), tx.deleteKey(k)),
    putAlias: (r) => (changes.names.add(aliasName(r, r.aliasName)), tx.putAlias(r)),
    deleteAlias: (s, n) => (changes.names.add(aliasName(s, n)), tx.deleteAlias(s, n)),
    putGrant: (r) => (changes.names.add(grantName(r.grantId)), tx.putGrant(r)),
    deleteGrant: (id) => (changes.names.add(grantName(id)), tx.deleteGrant(id)),
    putCustomKeyStore: (r) => (changes.names.add(customKeyStoreName(r.customKeyStoreId)), tx.putCustomKeyStore(r)),
    deleteCustomKeyStore: (id) => (changes.names.add(customKeyStoreName(id)), tx.deleteCustomKeyStore(id)),
  };
  return new Proxy(tx, {
    get(target, property, receiver) {
      if (typeof property === 'string' && property in noting) return noting[property as keyof StoreTransaction];
      const value = Reflect.get(target, property, receiver) as unknown;
      return typeof value === 'function' ? (value as (...a: unknown[]) => unknown).bind(target) : value;
    },
  });
}
