import { randomUUID } from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { expect } from 'chai';
import { Pool } from 'pg';
import pino from 'pino';
import { KmsError } from '../../src/errors';
import { JsonFileStore } from '../../src/store/json/json-file-store';
import type { MetadataStore } from '../../src/store/metadata-store';
import { PostgresStore } from '../../src/store/postgres/postgres-store';
import { migrateSchema, migrations } from '../../src/store/postgres/schema';
import { type CreationIntent, keyArn, type KeyRecord } from '../../src/store/records';
import { until } from '../support/in-process';
import { contentsOf, grantRecord, keyRecord, scope } from '../support/store-records';
import { freshDatabaseUrl } from '../support/postgres';
import { describeWarning, warningsDuring } from '../support/process-warnings';

const log = pino({ level: 'silent' });

/** Two handles on one store: two PostgresStore instances (as two processes), or the one JSON store twice. */
interface Backend {
  name: string;
  open(): Promise<{ a: MetadataStore; b: MetadataStore; close(): Promise<void> }>;
}

/** The JSON store on a directory of its own; closing it checks that reopening reads back what it held. */
function jsonBackend(name: string, options: { journalFromBytes?: number }): Backend {
  return {
    name,
    async open() {
      const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'p11kms-contract-'));
      const store = await JsonFileStore.open(dir, options);
      const close = async () => {
        const held = await contentsOf(store);
        await store.close();
        const reopened = await JsonFileStore.open(dir, options);
        try {
          expect(await contentsOf(reopened), 'reopened, the store holds what it held').to.deep.equal(held);
        } finally {
          await reopened.close();
          fs.rmSync(dir, { recursive: true, force: true });
        }
      };
      return { a: store, b: store, close };
    },
  };
}

const backends: Backend[] = [
  jsonBackend('JSON file', {}),
  // Every commit appended to metadata.journal, the file rewritten each time the journal reaches 64 KiB.
  jsonBackend('JSON file, journaling', { journalFromBytes: 0 }),
  {
    name: 'PostgreSQL',
    async open() {
      const url = await freshDatabaseUrl();
      const a = await PostgresStore.open(url, log);
      const b = await PostgresStore.open(url, log);
      return { a, b, close: async () => void (await Promise.all([a.close(), b.close()])) };
    },
  },
];

/** CreateAlias's body: check inside the transaction, then create. */
const createAliasIn = (store: MetadataStore, aliasName: string, targetKeyId: string) =>
  store.transact(async (tx) => {
    if (await tx.getAlias(scope, aliasName)) throw new KmsError('AlreadyExistsException', `An alias with the name ${aliasName} already exists`);
    tx.putAlias({ ...scope, aliasName, targetKeyId, createdAt: Date.now(), updatedAt: Date.now() });
  });

for (const backend of backends) {
  describe(`metadata store contract: ${backend.name}`, function () {
    let a: MetadataStore;
    let b: MetadataStore;
    let close: () => Promise<void>;

    before(async () => {
      ({ a, b, close } = await backend.open());
    });
    after(async () => close?.());

    it('commits a transaction whole, reads its own writes, and drops every write of a body that throws', async () => {
      const key = keyRecord();
      const seen = await a.transact(async (tx) => {
        tx.putKey(key);
        tx.putAlias({ ...scope, aliasName: 'alias/contract-own', targetKeyId: key.keyId, createdAt: 1, updatedAt: 1 });
        return { key: await tx.getKey(key), aliases: (await tx.listAliases(scope)).map((x) => x.aliasName) };
      });
      expect(seen.key).to.deep.equal(key);
      expect(seen.aliases).to.include('alias/contract-own');
      expect(await b.getKey(key)).to.deep.equal(key);

      const other = keyRecord();
      const failed = await b
        .transact(async (tx) => {
          tx.putKey(other);
          tx.deleteAlias(scope, 'alias/contract-own');
          throw new KmsError('DisabledException', 'no');
        })
        .catch((err: Error) => err);
      expect(failed).to.be.instanceOf(KmsError);
      expect(await a.getKey(other)).to.equal(undefined);
      expect(await a.getAlias(scope, 'alias/contract-own')).to.not.equal(undefined);
      expect((await a.listKeys(scope)).map((k) => k.keyId)).to.include(key.keyId);
    });

    it('keeps custom key stores: a transaction sees its own writes, another handle the committed ones, per scope', async () => {
      const id = `cks-${randomUUID().replace(/-/g, '').slice(0, 17)}`;
      const record = { customKeyStoreId: id, ...scope, name: `store-${id}`, type: 'AWS_CLOUDHSM' as const, createdAt: Date.now(), connectRequested: false, cloudHsmClusterId: 'cluster-abcdefghijk', sealedPassword: 'c2VhbGVk' };
      const seen = await a.transact(async (tx) => {
        tx.putCustomKeyStore(record);
        return (await tx.listCustomKeyStores()).map((c) => c.customKeyStoreId);
      });
      expect(seen).to.include(id);
      expect(await b.getCustomKeyStore(id)).to.deep.equal(record);
      expect((await b.listCustomKeyStores(scope)).map((c) => c.customKeyStoreId)).to.include(id);
      expect(await b.listCustomKeyStores({ region: 'eu-west-1', accountId: scope.accountId })).to.deep.equal([]);
      await b.transact(async (tx) => tx.putCustomKeyStore({ ...record, connectRequested: true }));
      expect((await a.getCustomKeyStore(id))?.connectRequested).to.equal(true);
      await a.transact(async (tx) => tx.deleteCustomKeyStore(id));
      expect(await b.getCustomKeyStore(id)).to.equal(undefined);
    });

    it('keeps records byte for byte (member order of encryption-context constraints included)', async () => {
      const key = keyRecord();
      const grant = grantRecord(key.keyId, 'order');
      await a.transact((tx) => {
        tx.putKey(key);
        tx.putGrant(grant);
      });
      expect(JSON.stringify(await b.getGrant(grant.grantId))).to.equal(JSON.stringify(grant));
      expect((await b.listGrants(key)).map((g) => g.grantId)).to.deep.equal([grant.grantId]);
    });

    it('two handles racing on one alias name: exactly one creates it, the other sees it inside its transaction', async () => {
      const key = keyRecord();
      await a.transact((tx) => tx.putKey(key));
      for (let round = 0; round < 5; round++) {
        const name = `alias/race-${round}`;
        const results = await Promise.allSettled([createAliasIn(a, name, key.keyId), createAliasIn(b, name, key.keyId), createAliasIn(a, name, key.keyId)]);
        expect(results.filter((r) => r.status === 'fulfilled'), name).to.have.length(1);
        for (const r of results) if (r.status === 'rejected') expect((r.reason as KmsError).name).to.equal('AlreadyExistsException');
      }
    });

    it('concurrent read-modify-write transactions on one key through both handles lose nothing', async () => {
      const key = keyRecord();
      await a.transact((tx) => tx.putKey(key));
      const addTag = (store: MetadataStore, i: number) =>
        store.transact(async (tx) => {
          const current = (await tx.getKey(key))!;
          tx.putKey({ ...current, tags: [...current.tags, { TagKey: `t${i}`, TagValue: String(i) }] });
        });
      await Promise.all(Array.from({ length: 16 }, (_, i) => addTag(i % 2 === 0 ? a : b, i)));
      const final = await a.transact((tx) => tx.getKey(key));
      expect(final!.tags.map((t) => t.TagKey).sort()).to.deep.equal(Array.from({ length: 16 }, (_, i) => `t${i}`).sort());
    });

    it('grant Name idempotency holds under concurrent creation through both handles', async () => {
      const key = keyRecord();
      await a.transact((tx) => tx.putKey(key));
      const create = (store: MetadataStore) =>
        store.transact(async (tx) => {
          const candidate = grantRecord(key.keyId, 'same-name');
          const same = (await tx.listGrants(key)).find((g) => g.name === candidate.name);
          if (same) return same.grantId;
          tx.putGrant(candidate);
          return candidate.grantId;
        });
      const ids = await Promise.all([create(a), create(b), create(a), create(b)]);
      expect(new Set(ids).size).to.equal(1);
      expect(await a.transact((tx) => tx.listGrants(key))).to.have.length(1);
    });

    it('a change through one handle is read through the other once it has committed (deletions included)', async () => {
      const key = keyRecord();
      await a.transact((tx) => tx.putKey(key));
      expect((await b.getKey(key))?.keyState).to.equal('Enabled');
      await a.transact((tx) => tx.putKey({ ...key, keyState: 'Disabled' }));
      // Across processes the cache may hold the old record until the notification arrives:
      // wait for the event, not for a time.
      expect(await until(async () => (await b.getKey(key))?.keyState === 'Disabled'), 'the other handle never saw the change').to.equal(true);
      await a.transact((tx) => tx.deleteKey(key));
      expect(await until(async () => (await b.getKey(key)) === undefined), 'the other handle never saw the deletion').to.equal(true);
    });

    /** Two keys of the scope, committed through the first handle. */
    const twoKeys = async (): Promise<[KeyRecord, KeyRecord]> => {
      const keys: [KeyRecord, KeyRecord] = [keyRecord(), keyRecord()];
      await a.transact((tx) => keys.forEach((k) => tx.putKey(k)));
      return keys;
    };
    const aliasNamesOf = async (store: MetadataStore, key: KeyRecord) => (await store.listKeyAliases(key)).map((x) => x.aliasName);

    it("lists a key's aliases apart from the account's others, and a moved or deleted alias leaves its former key's list at once through the other handle", async () => {
      const [first, second] = await twoKeys();
      const suffix = randomUUID().slice(0, 8);
      const [moved, deleted, kept] = ['moved', 'deleted', 'kept'].map((n) => `alias/key-aliases-${n}-${suffix}`);
      for (const name of [moved, deleted, kept]) await createAliasIn(a, name, first.keyId);
      await createAliasIn(a, `alias/key-aliases-other-${suffix}`, second.keyId);
      expect(await until(async () => (await aliasNamesOf(b, first)).length === 3), 'the other handle never saw the three aliases').to.equal(true);
      expect(await aliasNamesOf(b, first)).to.deep.equal([deleted, kept, moved]);
      expect(await aliasNamesOf(b, second)).to.deep.equal([`alias/key-aliases-other-${suffix}`]);
      expect(await aliasNamesOf(b, { ...first, accountId: '999999999999' }), 'another account').to.deep.equal([]);

      // The reading handle's cache holds the first key's list now; the change's notification must drop it.
      const heard = (name: string) =>
        new Promise<void>((resolve) => {
          if (!b.watchChanges) return resolve();
          const stop = b.watchChanges((changed) => {
            if (changed === '*' || changed.includes(`a:${scope.region}/${scope.accountId}/${name}`)) stop(), resolve();
          });
        });
      const movedHeard = heard(moved);
      await a.transact(async (tx) => tx.putAlias({ ...(await tx.getAlias(scope, moved))!, targetKeyId: second.keyId, updatedAt: Date.now() }));
      await movedHeard;
      expect(await aliasNamesOf(b, first), 'after UpdateAlias').to.deep.equal([deleted, kept]);
      expect(await aliasNamesOf(b, second)).to.deep.equal([moved, `alias/key-aliases-other-${suffix}`]);
      const deletedHeard = heard(deleted);
      await a.transact((tx) => tx.deleteAlias(scope, deleted));
      await deletedHeard;
      expect(await aliasNamesOf(b, first), 'after DeleteAlias').to.deep.equal([kept]);
    });

    it("aliases moved back and forth by many transactions at once through both handles: each key's list ends as the aliases are", async () => {
      const [first, second] = await twoKeys();
      const suffix = randomUUID().slice(0, 8);
      const moving = Array.from({ length: 8 }, (_, i) => `alias/moving-${i}-${suffix}`);
      for (const name of moving) await createAliasIn(a, name, first.keyId);
      expect(await until(async () => (await aliasNamesOf(b, first)).length === moving.length)).to.equal(true);
      expect(await aliasNamesOf(b, second)).to.deep.equal([]);
      // Three moves of each alias, all at once through both handles: each ends on the second key.
      // The reading handle (b) has both lists cached; it must hear every one of the 24 commits.
      // It hears each of its own commits twice (when it commits, and again as the notification
      // every node receives) and each of a's once: four times per alias. Waiting for three let the
      // check run before the notification of a's last move had arrived (1 run in ~10 on a busy
      // machine), reading a list that was still, correctly, about to be dropped.
      const heard = new Map<string, number>();
      const allHeard = new Promise<void>((resolve) => {
        if (!b.watchChanges) return resolve();
        const stop = b.watchChanges((changed) => {
          for (const name of moving) if (changed === '*' || changed.includes(`a:${scope.region}/${scope.accountId}/${name}`)) heard.set(name, (heard.get(name) ?? 0) + 1);
          if (moving.every((name) => (heard.get(name) ?? 0) >= 4)) stop(), resolve();
        });
      });
      const flip = (store: MetadataStore, name: string) =>
        store.transact(async (tx) => {
          const current = (await tx.getAlias(scope, name))!;
          tx.putAlias({ ...current, targetKeyId: current.targetKeyId === first.keyId ? second.keyId : first.keyId, updatedAt: Date.now() });
        });
      // Meanwhile the reading handle keeps reading both lists, so its cache is filled at every stage.
      let flipping = true;
      const reading = (async () => {
        while (flipping) {
          await Promise.all([aliasNamesOf(b, first), aliasNamesOf(b, second)]);
          // The JSON store answers from memory: let its commits (file writes) have their turn.
          await new Promise((resolve) => setImmediate(resolve));
        }
      })();
      await Promise.all(moving.flatMap((name) => [flip(a, name), flip(b, name), flip(a, name)]));
      await allHeard;
      flipping = false;
      await reading;
      expect(await aliasNamesOf(b, first)).to.deep.equal([]);
      expect(await aliasNamesOf(b, second)).to.deep.equal([...moving].sort());
      expect(await aliasNamesOf(a, second)).to.deep.equal([...moving].sort());
    });

    it('counts keys by state and spec as listing them would: what /metrics reads instead of every record', async () => {
      const before = await b.countKeys();
      await a.transact((tx) => {
        tx.putKey(keyRecord({ keyState: 'Disabled', keySpec: 'HMAC_256', keyUsage: 'GENERATE_VERIFY_MAC' }));
        tx.putKey(keyRecord({ keyState: 'PendingDeletion' }));
        tx.putKey(keyRecord({ region: 'eu-west-1', accountId: '999999999999' }));
      });
      const listed = new Map<string, number>();
      for (const k of await b.listKeys()) listed.set(`${k.keyState} ${k.keySpec}`, (listed.get(`${k.keyState} ${k.keySpec}`) ?? 0) + 1);
      const counted = new Map((await b.countKeys()).map((c) => [`${c.keyState} ${c.keySpec}`, c.count]));
      expect(counted).to.deep.equal(listed);
      expect(counted.get('Disabled HMAC_256')).to.be.greaterThan(0);
      expect(counted.get('PendingDeletion SYMMETRIC_DEFAULT')).to.be.greaterThan(0);
      const total = (counts: { count: number }[]) => counts.reduce((sum, c) => sum + c.count, 0);
      expect(total(await b.countKeys()), 'counted again after the three new keys').to.equal(total(before) + 3);
    });

    it('lists and counts keys (oldest first) through creations out of order, changes, deletions and a second region, read after each commit', async () => {
      // Creation times of their own, far in the past, so the other tests' keys come after these.
      const base = 1_000_000 + Math.floor(Math.random() * 1_000_000) * 1_000;
      const mine = new Map<string, KeyRecord>();
      const name = (k: KeyRecord) => `${k.region}/${k.keyId}`;
      const put = (records: KeyRecord[]) => a.transact((tx) => records.forEach((k) => (tx.putKey(k), mine.set(name(k), k))));
      const expected = () =>
        [...mine.values()]
          .sort((x, y) => x.createdAt - y.createdAt || (x.keyId < y.keyId ? -1 : x.keyId > y.keyId ? 1 : x.region < y.region ? -1 : 1))
          .map((k) => `${name(k)} ${k.description}`);
      const listed = async (store: MetadataStore, scoped?: boolean) =>
        (await store.listKeys(scoped ? scope : undefined)).filter((k) => mine.has(name(k))).map((k) => `${name(k)} ${k.description}`);
      const check = async (step: string) => {
        expect(await listed(b), step).to.deep.equal(expected());
        expect(await listed(a, true), `${step} (one region)`).to.deep.equal(expected().filter((line) => line.startsWith(`${scope.region}/`)));
        // The counts /metrics reads, kept apart from the list: the same numbers.
        const fromList = new Map<string, number>();
        for (const k of await b.listKeys()) fromList.set(`${k.keyState} ${k.keySpec}`, (fromList.get(`${k.keyState} ${k.keySpec}`) ?? 0) + 1);
        expect(new Map((await b.countKeys()).map((c) => [`${c.keyState} ${c.keySpec}`, c.count])), `${step} (counts)`).to.deep.equal(fromList);
      };
      // Several keys created in one millisecond (ties go by key id), committed newest first.
      const created = Array.from({ length: 40 }, (_, i) => keyRecord({ createdAt: base + 100 + (i % 10) }));
      await put(created.slice(20));
      await put(created.slice(0, 20));
      await check('after the first keys');
      await put(created.filter((_, i) => i % 4 === 0).map((k) => ({ ...k, description: 'changed', keyState: 'Disabled' as const })));
      await check('after changing some keys');
      expect((await b.listKeyRegions(created[3].keyId)).map((k) => k.region), 'a key in one region').to.deep.equal([scope.region]);
      // A region no key of this store has been in before.
      const replica = { ...created[3], region: 'ap-southeast-3', arn: keyArn({ region: 'ap-southeast-3', accountId: scope.accountId }, created[3].keyId) };
      const older = keyRecord({ createdAt: base + 1, description: 'older than all' });
      const between = keyRecord({ createdAt: base + 105, description: 'between' });
      const newest = keyRecord({ createdAt: base + 500, description: 'newest' });
      await a.transact((tx) => {
        for (const k of [created[1], created[17]]) tx.deleteKey(k), mine.delete(name(k));
        for (const k of [newest, between, replica, older]) tx.putKey(k), mine.set(name(k), k);
      });
      await check('after deleting two keys and creating four, one older than all');
      expect((await b.listKeyRegions(created[3].keyId)).map((k) => k.region), 'the key with a record in a second region').to.deep.equal(['ap-southeast-3', 'us-east-1']);
      await a.transact((tx) => void (tx.deleteKey(older), mine.delete(name(older))));
      await check('after deleting the oldest');
    });

    it('keeps the records of a multi-Region key in step: a write to one region carries the shared fields to the others', async () => {
      const keyId = `mrk-${randomUUID().replace(/-/g, '')}`;
      const primary = keyRecord({ keyId, primaryRegion: 'us-east-1' });
      const replica = { ...primary, region: 'eu-west-1', arn: keyArn({ region: 'eu-west-1', accountId: scope.accountId }, keyId), description: 'replica' };
      await a.transact((tx) => {
        tx.putKey(primary);
        tx.putKey(replica);
      });
      const rotated = { ...primary, currentVersion: 2, materials: [...primary.materials, { version: 2, materialId: 'b'.repeat(64), createdAt: Date.now() }] };
      await b.transact((tx) => tx.putKey(rotated));
      const regions = await a.transact((tx) => tx.listKeyRegions(keyId));
      expect(regions.map((k) => [k.region, k.currentVersion, k.description])).to.deep.equal([
        ['eu-west-1', 2, 'replica'],
        ['us-east-1', 2, ''],
      ]);
    });

    it('runs background work in one process only', async () => {
      const ranA = await a.asLeader('contract-task', async () => 'a');
      const ranB = await b.asLeader('contract-task', async () => 'b');
      if (a === b) expect([ranA, ranB]).to.deep.equal(['a', 'b']);
      else expect([ranA, ranB]).to.deep.equal(['a', undefined]);
    });
  });
}

describe('PostgreSQL store: schema and cluster duties', function () {
  it('migrates a new database under a lock (two at once), and refuses a schema newer than the code with a message saying so', async () => {
    const url = await freshDatabaseUrl();
    const pool = new Pool({ connectionString: url });
    try {
      const both = await Promise.all([migrateSchema(pool, log), migrateSchema(pool, log)]);
      const newest = migrations().at(-1)!.version;
      expect(both.map((r) => r.to)).to.deep.equal([newest, newest]);
      await pool.query('INSERT INTO p11kms_schema (version, name) VALUES ($1, $2)', [newest + 1, 'from-the-future.sql']);
      const err = await PostgresStore.open(url, log).then(
        () => undefined,
        (e: Error) => e,
      );
      expect(err?.message).to.match(new RegExp(`schema is at version ${newest + 1}, newer than this p11kms knows \\(${newest}\\)`));
    } finally {
      await pool.end();
    }
  });

  it('creation intents: listed once committed, and exactly one of two processes resolving the same intent does so', async () => {
    type IntentTx = { getIntent(id: string): Promise<CreationIntent | undefined>; putIntent(i: CreationIntent): void; deleteIntent(id: string): void };
    const url = await freshDatabaseUrl();
    const a = await PostgresStore.open(url, log);
    const b = await PostgresStore.open(url, log);
    try {
      const intent: CreationIntent = { creationId: randomUUID(), keyId: randomUUID(), purpose: 'material', createdAt: Date.now(), owner: 'test:1' };
      await a.transact((tx) => (tx as unknown as IntentTx).putIntent(intent));
      expect(await b.listIntents()).to.deep.equal([intent]);
      const resolve = (store: PostgresStore) =>
        store.transact(async (tx) => {
          const t = tx as unknown as IntentTx;
          if (!(await t.getIntent(intent.creationId))) return 'already gone';
          t.deleteIntent(intent.creationId);
          return 'resolved';
        });
      expect((await Promise.all([resolve(a), resolve(b), resolve(a)])).sort()).to.deep.equal(['already gone', 'already gone', 'resolved']);
      expect(await a.listIntents()).to.deep.equal([]);
      expect(a.singleWriter).to.equal(false);
    } finally {
      await Promise.all([a.close(), b.close()]);
    }
  });

  it('a connection cut in the middle of a transaction, before its COMMIT: the process lives, the transaction runs again on another connection and commits once', async () => {
    const url = await freshDatabaseUrl();
    let lossLogged!: () => void;
    const loss = new Promise<void>((resolve) => (lossLogged = resolve));
    const watched = pino({ level: 'warn' }, { write: (line: string) => line.includes('PostgreSQL connection lost while held') && lossLogged() });
    const store = await PostgresStore.open(url, watched);
    const admin = new Pool({ connectionString: url, max: 1 });
    try {
      let bodyWaiting!: () => void;
      const waiting = new Promise<void>((resolve) => (bodyWaiting = resolve));
      let cutDone!: () => void;
      const cut = new Promise<void>((resolve) => (cutDone = resolve));
      let runs = 0;
      const cutShort = store.transact(async (tx) => {
        runs++;
        await tx.getCustomKeyStore('cks-00000000000000000');
        tx.putKey(keyRecord({ description: 'from the cut transaction' }));
        bodyWaiting();
        await cut;
      });
      await waiting;
      const { rowCount } = await admin.query("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE state = 'idle in transaction' AND datname = current_database()");
      expect(rowCount).to.equal(1);
      // The loss reaches the held client as an event between two statements (what killed the process before).
      await loss;
      cutDone();
      // It had not committed (no COMMIT was sent), and bodies are pure: run again, committed once.
      await cutShort;
      expect(runs).to.equal(2);
      const after = keyRecord({ description: 'after the cut' });
      await store.transact((tx) => tx.putKey(after));
      expect((await store.fresh!().listKeys()).map((k) => k.description).sort()).to.deep.equal(['after the cut', 'from the cut transaction']);
    } finally {
      await admin.end();
      await store.close();
    }
  });

  it('hands background work to another process when its runner goes away', async () => {
    const url = await freshDatabaseUrl();
    const a = await PostgresStore.open(url, log);
    const b = await PostgresStore.open(url, log);
    try {
      expect(await a.asLeader('handover', async () => 'a')).to.equal('a');
      expect(await b.asLeader('handover', async () => 'b')).to.equal(undefined);
      await a.close();
      // The lock goes when PostgreSQL has ended a's sessions: wait for that, not for a time.
      expect(await until(async () => (await b.asLeader('handover', async () => 'b')) === 'b'), 'the lock was never handed over').to.equal(true);
    } finally {
      await b.close();
    }
  });
  it('background tasks that ask at once share one session: closing the process hands every one of them over', async () => {
    const url = await freshDatabaseUrl();
    const a = await PostgresStore.open(url, log);
    const b = await PostgresStore.open(url, log);
    const tasks = ['sweeper', 'reconciler', 'rotation'];
    try {
      // The tasks and the audit outbox's liveness ask (two statements) all at once on the one
      // session: node-postgres 9 drops the queue its 8 kept for a query asked while its
      // connection runs another, and 8 warns of that; they go in turn instead.
      const { value: asked, warnings } = await warningsDuring(() =>
        Promise.all([Promise.all(tasks.map((task) => a.asLeader(task, async () => task))), a.processLiveness.isAlive('a process that never ran')]),
      );
      expect(asked).to.deep.equal([tasks, false]);
      expect(warnings.filter((w) => w.name === 'DeprecationWarning').map(describeWarning), 'deprecations announced while they asked').to.deep.equal([]);
      await a.close();
      for (const task of tasks) {
        expect(await until(async () => (await b.asLeader(task, async () => 'b')) === 'b'), `${task} was never handed over`).to.equal(true);
      }
    } finally {
      await b.close();
    }
  });
});

describe('JSON file store: the file', function () {
  it('is the JSON of every committed record, also when a commit rewrites only some of them, and reopens to the same state', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'p11kms-json-file-'));
    const first = keyRecord();
    const second = keyRecord();
    let store = await JsonFileStore.open(dir);
    try {
      await store.transact((tx) => {
        tx.putKey(first);
        tx.putKey(second);
        tx.putAlias({ ...scope, aliasName: 'alias/json-file', targetKeyId: first.keyId, createdAt: 1, updatedAt: 1 });
      });
      // A later commit changes one record (as the last-usage flush does) and leaves the others.
      const used = { ...first, lastUsage: { operation: 'Encrypt', at: 1_700_000_000_000, requestId: 'r-1' } };
      await store.transact((tx) => tx.putKey(used));
      const text = fs.readFileSync(path.join(dir, 'metadata.json'), 'utf8');
      expect(text, 'the text JSON.stringify makes of what it holds').to.equal(JSON.stringify(JSON.parse(text)));
      const file = JSON.parse(text) as { keys: Array<{ keyId: string }>; aliases: unknown[] };
      expect(file.keys.map((k) => k.keyId).sort()).to.deep.equal([first.keyId, second.keyId].sort());
      expect(file.aliases).to.have.length(1);
    } finally {
      await store.close();
    }
    store = await JsonFileStore.open(dir);
    try {
      expect((await store.getKey(first))?.lastUsage?.requestId).to.equal('r-1');
      expect(JSON.stringify(await store.getKey(second))).to.equal(JSON.stringify(second));
    } finally {
      await store.close();
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('JSON file store: views built ahead of the first reads', function () {
  const alias = (aliasName: string, targetKeyId: string) => ({ ...scope, aliasName, targetKeyId, createdAt: 1, updatedAt: 1 });
  const readsOf = async (store: MetadataStore, keys: readonly KeyRecord[]) => ({
    aliasesByKey: await Promise.all(keys.map(async (k) => (await store.listKeyAliases(k)).map((a) => a.aliasName))),
    grantsByKey: await Promise.all(keys.map(async (k) => (await store.listGrants(k)).map((g) => g.grantId))),
    regions: await Promise.all(keys.map(async (k) => (await store.listKeyRegions(k.keyId)).map((r) => r.region))),
    counts: (await store.countKeys()).map((c) => `${c.keyState} ${c.keySpec} ${c.count}`).sort(),
  });

  it('answers after the warm-up and later commits exactly as a store reopened from its files', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'p11kms-json-warm-'));
    const keys = Array.from({ length: 6 }, () => keyRecord());
    let store = await JsonFileStore.open(dir);
    try {
      await store.transact((tx) => {
        keys.forEach((k) => tx.putKey(k));
        tx.putAlias(alias('alias/w-one', keys[0].keyId));
        tx.putAlias(alias('alias/w-two', keys[0].keyId));
        tx.putAlias(alias('alias/w-three', keys[1].keyId));
        tx.putGrant(grantRecord(keys[0].keyId));
      });
    } finally {
      await store.close();
    }
    store = await JsonFileStore.open(dir);
    let afterWarmUp: Awaited<ReturnType<typeof readsOf>>;
    try {
      const steps = store.warmUps();
      expect(steps.length, 'a step per view every key use reads').to.be.greaterThan(0);
      for (const step of steps) step();
      // Every kind of change a view must follow, after the views were built.
      await store.transact((tx) => {
        tx.putAlias(alias('alias/w-two', keys[2].keyId)); // re-targeted
        tx.deleteAlias(scope, 'alias/w-three');
        tx.putAlias(alias('alias/w-four', keys[1].keyId));
        tx.putGrant(grantRecord(keys[1].keyId));
        tx.putKey({ ...keys[3], keyState: 'Disabled' });
        tx.putKey({ ...keys[4], region: 'eu-north-1', arn: keyArn({ region: 'eu-north-1', accountId: scope.accountId }, keys[4].keyId) });
        tx.deleteKey(keys[5]);
      });
      afterWarmUp = await readsOf(store, keys);
      expect(afterWarmUp.aliasesByKey.slice(0, 3)).to.deep.equal([['alias/w-one'], ['alias/w-four'], ['alias/w-two']]);
      expect(afterWarmUp.regions[4]).to.deep.equal(['eu-north-1', 'us-east-1']);
    } finally {
      await store.close();
    }
    store = await JsonFileStore.open(dir);
    try {
      expect(await readsOf(store, keys), 'views built by first reads of the reopened store').to.deep.equal(afterWarmUp);
    } finally {
      await store.close();
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  it("knows a key's new region when its first read of regions came while that region's commit was being written", async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'p11kms-json-regions-'));
    const store = await JsonFileStore.open(dir);
    try {
      const key = keyRecord();
      await store.transact((tx) => tx.putKey(key));
      const replica = { ...key, region: 'sa-east-1', arn: keyArn({ region: 'sa-east-1', accountId: scope.accountId }, key.keyId) };
      let readDuringWrite: Promise<KeyRecord[]> | undefined;
      await store.transact((tx) => {
        tx.putKey(replica);
        // Runs once this transaction is applied and its file write has begun (a request's read).
        setImmediate(() => (readDuringWrite = store.listKeyRegions(key.keyId)));
      });
      // Pre: that read came before the commit, so it saw the key in one region.
      expect((await readDuringWrite!).map((k) => k.region)).to.deep.equal(['us-east-1']);
      expect((await store.listKeyRegions(key.keyId)).map((k) => k.region)).to.deep.equal(['sa-east-1', 'us-east-1']);
    } finally {
      await store.close();
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('JSON file store: last uses', function () {
  it('appends only the uses a flush changed, then folds them into last-usage.json, every used key and no other, once the journal has grown', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'p11kms-last-usage-many-'));
    // Enough uses for more than 1 MiB of journal, in more than two slices of the file (2,000 per
    // event-loop turn), with keys never used between them.
    const keys = Array.from({ length: 9_000 }, () => keyRecord());
    const used = keys.filter((_, i) => i % 10 !== 3);
    const useOf = (key: KeyRecord, round: number) => ({ operation: round === 0 ? 'Encrypt' : 'Sign', at: 1_700_000_000_000 + round, requestId: `${round}-${key.keyId}` });
    const usageFile = path.join(dir, 'last-usage.json');
    const usageJournal = path.join(dir, 'last-usage.journal');
    const flush = (store: JsonFileStore, changed: KeyRecord[], round: number) =>
      store.transactLastUsage(async (tx) => {
        for (const key of changed) tx.putKey({ ...(await tx.getKey(key))!, lastUsage: useOf(key, round) });
      });
    const journalLines = () => fs.readFileSync(usageJournal, 'utf8').split('\n').filter(Boolean).map((line) => JSON.parse(line) as { uses: Record<string, unknown> });
    let store = await JsonFileStore.open(dir);
    try {
      await store.transact((tx) => keys.forEach((key) => tx.putKey(key)));
      await flush(store, used, 0);
      expect(fs.existsSync(usageFile), 'the first flush goes to the journal').to.equal(false);
      expect(journalLines().map((line) => Object.keys(line.uses).length)).to.deep.equal([used.length]);
      expect(fs.statSync(usageJournal).size).to.be.above(1024 * 1024);
      // The journal is as long as it may grow: this flush folds it into last-usage.json.
      const changed = [used[0], used[4_000], used.at(-1)!];
      await flush(store, changed, 1);
      expect(fs.statSync(usageJournal).size, 'emptied once folded').to.equal(0);
      const text = fs.readFileSync(usageFile, 'utf8');
      expect(text, 'the text JSON.stringify makes of what it holds').to.equal(JSON.stringify(JSON.parse(text)));
      const changedIds = new Set(changed.map((key) => key.keyId));
      const expected = { format: 'p11kms-last-usage', version: 1, uses: Object.fromEntries(used.map((key) => [`${key.region}/${key.keyId}`, useOf(key, changedIds.has(key.keyId) ? 1 : 0)])) };
      expect(JSON.parse(text)).to.deep.equal(expected);
      // From here on a flush appends its own uses again, and leaves the file as it is.
      await flush(store, [used[1]], 2);
      expect(journalLines()).to.deep.equal([{ uses: { [`${used[1].region}/${used[1].keyId}`]: useOf(used[1], 2) } }]);
      expect(fs.readFileSync(usageFile, 'utf8')).to.equal(text);
    } finally {
      await store.close();
    }
    store = await JsonFileStore.open(dir);
    try {
      expect((await store.getKey(keys[3]))?.lastUsage, 'a key never used').to.equal(undefined);
      expect((await store.getKey(used[4_000]))?.lastUsage?.operation, 'a use folded into the file').to.equal('Sign');
      expect((await store.getKey(used[1]))?.lastUsage?.requestId, 'a use in the journal after the file').to.equal(`2-${used[1].keyId}`);
      expect((await store.getKey(used[2]))?.lastUsage?.operation, 'an unchanged use').to.equal('Encrypt');
    } finally {
      await store.close();
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  it('leaves out a torn last line of last uses, appends after the good ones, and refuses to open when a bad line has good ones after it', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'p11kms-last-usage-torn-'));
    const key = keyRecord();
    const other = keyRecord();
    const usageJournal = path.join(dir, 'last-usage.journal');
    const use = (requestId: string) => ({ operation: 'Encrypt', at: Date.now(), requestId });
    let store = await JsonFileStore.open(dir);
    try {
      await store.transact((tx) => [key, other].forEach((k) => tx.putKey(k)));
      await store.transactLastUsage((tx) => tx.putKey({ ...key, lastUsage: use('r-1') }));
    } finally {
      await store.close();
    }
    // A crash in the middle of the next flush's append: half a line, never acknowledged.
    const good = fs.readFileSync(usageJournal, 'utf8');
    fs.appendFileSync(usageJournal, `{"uses":{"${other.region}/${other.keyId}":{"operation":"Enc`);
    store = await JsonFileStore.open(dir);
    try {
      expect((await store.getKey(key))?.lastUsage?.requestId).to.equal('r-1');
      expect((await store.getKey(other))?.lastUsage, 'the torn use').to.equal(undefined);
      expect(fs.readFileSync(usageJournal, 'utf8'), 'cut off at opening').to.equal(good);
      await store.transactLastUsage(async (tx) => tx.putKey({ ...(await tx.getKey(other))!, lastUsage: use('r-2') }));
    } finally {
      await store.close();
    }
    store = await JsonFileStore.open(dir);
    try {
      expect((await store.getKey(other))?.lastUsage?.requestId, 'the line after the cut').to.equal('r-2');
    } finally {
      await store.close();
    }
    // Damage before a good line was not made by a crash: nothing is guessed.
    fs.writeFileSync(usageJournal, `garbage\n${fs.readFileSync(usageJournal, 'utf8')}`);
    try {
      await JsonFileStore.open(dir).then((s) => s.close());
      expect.fail('opened a store whose last-usage.journal is damaged');
    } catch (err) {
      expect((err as Error).message).to.match(/last-usage\.journal is damaged: bytes 0–8 are not a line of last uses, and lines follow them/);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  it('writes a last-usage flush beside metadata.json, not into it, and applies the newer of the two on opening', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'p11kms-last-usage-'));
    const key = keyRecord();
    const other = keyRecord();
    const metadataFile = path.join(dir, 'metadata.json');
    let store = await JsonFileStore.open(dir);
    try {
      await store.transact((tx) => {
        tx.putKey(key);
        tx.putKey(other);
      });
      const before = fs.readFileSync(metadataFile, 'utf8');
      await store.transactLastUsage(async (tx) => {
        tx.putKey({ ...(await tx.getKey(key))!, lastUsage: { operation: 'Decrypt', at: 2_000, requestId: 'r-2' } });
      });
      expect(fs.readFileSync(metadataFile, 'utf8'), 'metadata.json untouched by the flush').to.equal(before);
      expect((await store.getKey(key))?.lastUsage?.requestId, 'read at once').to.equal('r-2');
    } finally {
      await store.close();
    }
    store = await JsonFileStore.open(dir);
    try {
      expect((await store.getKey(key))?.lastUsage?.requestId, 'after reopening').to.equal('r-2');
      expect((await store.getKey(other))?.lastUsage).to.equal(undefined);
      // Any other commit writes the last uses into metadata.json too.
      await store.transact((tx) => tx.deleteKey(other));
      const file = JSON.parse(fs.readFileSync(metadataFile, 'utf8')) as { keys: KeyRecord[] };
      expect(file.keys.map((k) => k.lastUsage?.requestId)).to.deep.equal(['r-2']);
      // An older use in last-usage.json never replaces a newer one in metadata.json.
      fs.writeFileSync(path.join(dir, 'last-usage.json'), JSON.stringify({ format: 'p11kms-last-usage', version: 1, uses: { [`${key.region}/${key.keyId}`]: { operation: 'Encrypt', at: 1_000, requestId: 'r-1' } } }));
    } finally {
      await store.close();
    }
    store = await JsonFileStore.open(dir);
    try {
      expect((await store.getKey(key))?.lastUsage?.requestId).to.equal('r-2');
    } finally {
      await store.close();
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
