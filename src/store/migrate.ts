import type { Logger } from 'pino';
import { isSharedStoreUrl } from '../config/config';
import type { GrantRecord } from './grant-record';
import type { MetadataStore, StoreTransaction } from './metadata-store';
import { openStore } from './open-store';
import type { AliasRecord, CreationIntent, CustomKeyStoreRecord, KeyRecord, Scope } from './records';

export interface KindReport {
  inSource: number;
  copied: number;
  alreadyThere: number;
  inTarget: number;
}

export interface MigrationReport {
  customKeyStores: KindReport;
  keys: KindReport;
  aliases: KindReport;
  grants: KindReport;
  intents: KindReport;
}

interface Everything {
  customKeyStores: CustomKeyStoreRecord[];
  keys: KeyRecord[];
  aliases: AliasRecord[];
  grants: GrantRecord[];
  /** Removals (and creations) not finished: without them, objects they name would be kept as unknown. */
  intents: CreationIntent[];
}

/** A store location: a postgres:// URL, or a data directory holding the JSON store. */
export function openLocation(location: string, log: Logger): Promise<MetadataStore> {
  return isSharedStoreUrl(location) ? openStore({ storeUrl: location, dataDir: '.', log }) : openStore({ storeUrl: undefined, dataDir: location, log });
}

/**
 * Copies every custom key store, key, alias, grant and intent from one store to the other in one
 * transaction on the
 * target. Idempotent: a record the target already holds unchanged is left alone; a record the
 * target holds *differently* stops the migration before anything is written. Afterwards every
 * source record is read back from the target and the counts are compared.
 */
export async function migrateStore(source: MetadataStore, target: MetadataStore): Promise<MigrationReport> {
  await refusePendingRecords(source);
  const from = await everything(source);
  const counts = { customKeyStores: 0, keys: 0, aliases: 0, grants: 0, intents: 0 };
  await target.transact(async (tx) => {
    // Keys of AWS_CLOUDHSM stores name their store: without it they could never connect again.
    counts.customKeyStores = await copy(from.customKeyStores, (c) => tx.getCustomKeyStore(c.customKeyStoreId), (c) => tx.putCustomKeyStore(c), (c) => `custom key store ${c.customKeyStoreId}`);
    counts.keys = await copy(from.keys, (k) => tx.getKey(k), (k) => tx.putKey(k), (k) => `key ${k.keyId} (${k.region})`);
    counts.aliases = await copy(from.aliases, (a) => tx.getAlias(a, a.aliasName), (a) => tx.putAlias(a), (a) => `alias ${a.aliasName} (${a.region}, ${a.accountId})`);
    counts.grants = await copy(from.grants, (g) => tx.getGrant(g.grantId), (g) => tx.putGrant(g), (g) => `grant ${g.grantId}`);
    counts.intents = await copy(from.intents, (i) => tx.getIntent(i.creationId), (i) => tx.putIntent(i), (i) => `intent ${i.creationId}`);
  });
  const after = await everything(target);
  await verifyCopied(from, target);
  const kind = (name: keyof Everything): KindReport => ({
    inSource: from[name].length,
    copied: counts[name],
    alreadyThere: from[name].length - counts[name],
    inTarget: after[name].length,
  });
  return { customKeyStores: kind('customKeyStores'), keys: kind('keys'), aliases: kind('aliases'), grants: kind('grants'), intents: kind('intents') };
}

/**
 * Audit outbox entries (docs/audit.md, "Crash behaviour") are not copied: an entry whose record
 * is already in the source's trail (a process killed after the record, before the entry's
 * removal) is told apart only by a service searching that trail, and the target's service may
 * search another (another host of a cluster, another audit directory) and write it again.
 * One start of the source's service writes them, once, before it serves.
 */
async function refusePendingRecords(source: MetadataStore): Promise<void> {
  const pending = await source.listOutboxEntries();
  if (pending.length === 0) return;
  throw new Error(
    `the source holds ${pending.length} audit outbox ${pending.length === 1 ? 'entry' : 'entries'}: records of committed changes not confirmed in its audit trail ` +
      '(a service on it is still running, was killed, or could not write its trail). Only a service reading that trail can tell which are written already, so they are not copied: ' +
      'start p11kms on the source once (it writes them to its trail before serving), stop it gracefully (SIGTERM; every service, for a PostgreSQL source), and migrate again. Nothing was copied',
  );
}

async function copy<R>(records: R[], read: (r: R) => Promise<R | undefined>, write: (r: R) => void, name: (r: R) => string): Promise<number> {
  let copied = 0;
  for (const record of records) {
    const there = await read(record);
    if (there === undefined) {
      write(record);
      copied++;
    } else if (JSON.stringify(there) !== JSON.stringify(record)) {
      throw new Error(`the target already holds a different ${name(record)}; nothing was copied`);
    }
  }
  return copied;
}

async function everything(store: MetadataStore): Promise<Everything> {
  const keys = await store.listKeys();
  const scopes = new Map<string, Scope>(keys.map((k) => [`${k.region}/${k.accountId}`, { region: k.region, accountId: k.accountId }]));
  const aliases: AliasRecord[] = [];
  for (const scope of scopes.values()) aliases.push(...(await store.listAliases(scope)));
  return { customKeyStores: await store.listCustomKeyStores(), keys, aliases, grants: await store.listGrants(), intents: await store.listIntents() };
}

async function verifyCopied(from: Everything, target: MetadataStore): Promise<void> {
  const check = (what: string, a: unknown, b: unknown) => {
    if (JSON.stringify(a) !== JSON.stringify(b)) throw new Error(`verification failed: ${what} differs in the target after copying`);
  };
  // Read through a transaction: committed state, around any cache.
  await target.transact(async (tx: StoreTransaction) => {
    for (const c of from.customKeyStores) check(`custom key store ${c.customKeyStoreId}`, await tx.getCustomKeyStore(c.customKeyStoreId), c);
    for (const k of from.keys) check(`key ${k.keyId} (${k.region})`, await tx.getKey(k), k);
    for (const a of from.aliases) check(`alias ${a.aliasName}`, await tx.getAlias(a, a.aliasName), a);
    for (const g of from.grants) check(`grant ${g.grantId}`, await tx.getGrant(g.grantId), g);
    for (const i of from.intents) check(`intent ${i.creationId}`, await tx.getIntent(i.creationId), i);
  });
}
