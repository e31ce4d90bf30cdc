import type { Logger } from 'pino';
import type { Clock } from '../clock';
import { KmsError } from '../errors';
import type { KeyLocator, MetadataStore, StoreTransaction } from '../store/metadata-store';
import type { LastUsageRecord } from '../store/records';

/**
 * GetKeyLastUsage without a store write per cryptographic call: uses are kept in memory
 * (one entry per key, the latest wins) and written through the store every few seconds and
 * at shutdown, in one transaction. A crash loses at most one interval of usage records,
 * never key state.
 */
export class UsageTracker {
  /** By key record (`<region>/<key id>`: the regions of a multi-Region key are used separately). */
  private pending = new Map<string, { key: KeyLocator; usage: LastUsageRecord }>();
  private timer: NodeJS.Timeout | undefined;
  private flushing: Promise<void> | undefined;
  /** The batch being written: still "unflushed" until its transaction has committed. */
  private inFlight = new Map<string, { key: KeyLocator; usage: LastUsageRecord }>();

  constructor(
    private readonly store: MetadataStore,
    private readonly clock: Clock,
    private readonly log: Logger,
    private readonly intervalMs = 5_000,
  ) {}

  record(key: KeyLocator, operation: string, requestId: string): void {
    this.pending.set(`${key.region}/${key.keyId}`, { key: { keyId: key.keyId, region: key.region }, usage: { operation, at: this.clock.now(), requestId } });
  }

  /** The newest use not yet in the store, if any (queued, or in the flush under way). */
  unflushed(key: KeyLocator): LastUsageRecord | undefined {
    const id = `${key.region}/${key.keyId}`;
    return (this.pending.get(id) ?? this.inFlight.get(id))?.usage;
  }

  start(): void {
    // A KmsError's message is the client's text ("An internal error occurred."): its detail says why.
    const why = (err: unknown) => (err instanceof KmsError && err.internalDetail) || (err as Error).message;
    this.timer = setInterval(() => void this.flush().catch((err: unknown) => this.log.error({ err: why(err) }, 'last-usage flush failed')), this.intervalMs);
    this.timer.unref();
  }

  async stop(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    await this.flush().catch((err: unknown) => this.log.error({ err: (err as Error).message }, 'last-usage flush at shutdown failed'));
  }

  flush(): Promise<void> {
    this.flushing ??= this.flushOnce().finally(() => {
      this.flushing = undefined;
    });
    return this.flushing;
  }

  private async flushOnce(): Promise<void> {
    if (this.pending.size === 0) return;
    const batch = this.pending;
    this.pending = new Map();
    this.inFlight = batch;
    try {
      const body = async (tx: StoreTransaction) => {
        for (const { key: locator, usage } of batch.values()) {
          const key = await tx.getKey(locator);
          if (!key || (key.lastUsage && key.lastUsage.at > usage.at)) continue;
          tx.putKey({ ...key, lastUsage: usage });
        }
      };
      await (this.store.transactLastUsage ? this.store.transactLastUsage(body) : this.store.transact(body));
    } catch (err) {
      // Put the batch back unless a newer use arrived meanwhile.
      for (const [id, entry] of batch) if (!this.pending.has(id)) this.pending.set(id, entry);
      throw err;
    } finally {
      this.inFlight = new Map();
    }
  }
}
