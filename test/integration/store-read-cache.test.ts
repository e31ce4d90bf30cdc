import { expect } from 'chai';
import pino from 'pino';
import { PostgresStore } from '../../src/store/postgres/postgres-store';
import type { KeyRecord } from '../../src/store/records';
import { freshDatabaseUrl } from '../support/postgres';
import { postgresRelay, type PostgresRelay } from '../support/postgres-relay';
import { keyRecord } from '../support/store-records';

/** The statement that reads one key (src/store/postgres/reads.ts), as the relay sees it sent. */
const KEY_READ = 'SELECT doc FROM p11kms_keys WHERE key_id = $1 AND region = $2';

/**
 * The PostgreSQL store's request-path cache (change-feed.ts, ReadCache): every request on a
 * key reads it, and when its entry was missing or had expired under load, every request then
 * in flight read it from the database again (Encrypt × 64 on one key: ~165 reads a second
 * from one process where 6 would do). The relay counts what reaches the database.
 */
describe('PostgreSQL store: concurrent reads of one record', function () {
  this.timeout(60_000);
  let relay: PostgresRelay;
  let store: PostgresStore;
  let key: KeyRecord;

  beforeEach(async () => {
    relay = await postgresRelay(await freshDatabaseUrl());
    store = await PostgresStore.open(relay.url, pino({ level: 'silent' }));
    key = keyRecord({ description: 'first' });
    await store.transact((tx) => tx.putKey(key));
  });
  afterEach(async () => {
    await store.close();
    await relay.close();
  });

  it('requests that miss the cache at once share one read of the database, and all see the record', async () => {
    const before = relay.sent(KEY_READ);
    const read = await Promise.all(Array.from({ length: 64 }, () => store.getKey(key)));
    expect(read.map((k) => k?.description)).to.deep.equal(Array(64).fill('first'));
    expect(relay.sent(KEY_READ) - before, 'reads of the key that reached the database').to.equal(1);
  });

  it('a read that began before this node committed a change is not shared with requests after it: they read the change', async () => {
    const earlier = store.getKey(key);
    // This node's commit invalidates the entry at once (its own writes are read at once): the
    // requests after it must not wait for the read that began before it.
    await store.transact(async (tx) => tx.putKey({ ...(await tx.getKey(key))!, description: 'second' }));
    const later = await Promise.all(Array.from({ length: 8 }, () => store.getKey(key)));
    expect(later.map((k) => k?.description)).to.deep.equal(Array(8).fill('second'));
    expect(['first', 'second']).to.include((await earlier)?.description);
  });
});
