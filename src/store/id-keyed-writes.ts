import type { AuditOutboxEntry, CreationIntent, CustomKeyStoreRecord } from './records';

/**
 * What every store transaction buffers alike: the writes to the records named by an id of
 * their own (custom key stores, creation intents, audit outbox entries), the last one per id
 * winning, null for a delete. Each store applies them at the end in its own way; the records
 * whose buffered write needs more than the id (keys, aliases, grants) stay with each store.
 */
export abstract class IdKeyedWrites {
  protected readonly customKeyStores = new Map<string, CustomKeyStoreRecord | null>();
  protected readonly intents = new Map<string, CreationIntent | null>();
  protected readonly outbox = new Map<string, AuditOutboxEntry | null>();

  putCustomKeyStore(record: CustomKeyStoreRecord): void {
    this.customKeyStores.set(record.customKeyStoreId, record);
  }

  deleteCustomKeyStore(id: string): void {
    this.customKeyStores.set(id, null);
  }

  putIntent(intent: CreationIntent): void {
    this.intents.set(intent.creationId, intent);
  }

  deleteIntent(creationId: string): void {
    this.intents.set(creationId, null);
  }

  putOutboxEntry(entry: AuditOutboxEntry): void {
    this.outbox.set(entry.id, entry);
  }

  deleteOutboxEntry(id: string): void {
    this.outbox.set(id, null);
  }

  /** How many of these records have a buffered write. */
  protected idKeyedWriteCount(): number {
    return this.customKeyStores.size + this.intents.size + this.outbox.size;
  }
}
