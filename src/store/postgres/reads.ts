import type { Pool } from 'pg';
import type { GrantRecord } from '../grant-record';
import type { AliasTarget, KeyCount, KeyLocator } from '../metadata-store';
import type { AliasRecord, CustomKeyStoreRecord, KeyRecord, Scope } from '../records';

// Taking a pool or a transaction's client alike, so the cached store, its fresh() view and
// a transaction read records with the same SQL.
export interface Queryable {
  query: Pool['query'];
}

export type Doc<T> = { doc: T };

export async function readKey(q: Queryable, key: KeyLocator): Promise<KeyRecord | undefined> {
  const { rows } = await q.query<Doc<KeyRecord>>('SELECT doc FROM p11kms_keys WHERE key_id = $1 AND region = $2', [key.keyId, key.region]);
  return rows[0]?.doc;
}

export async function readKeyRegions(q: Queryable, keyId: string): Promise<KeyRecord[]> {
  const { rows } = await q.query<Doc<KeyRecord>>('SELECT doc FROM p11kms_keys WHERE key_id = $1', [keyId]);
  return rows.map((r) => r.doc).sort(byRegion);
}

export const byRegion = (a: KeyRecord, b: KeyRecord) => (a.region < b.region ? -1 : a.region > b.region ? 1 : 0);

export async function listKeysIn(q: Queryable, scope: Scope | undefined): Promise<KeyRecord[]> {
  const { rows } = scope
    ? await q.query<Doc<KeyRecord>>('SELECT doc FROM p11kms_keys WHERE region = $1 AND account_id = $2 ORDER BY created_at, key_id, region', [scope.region, scope.accountId])
    : await q.query<Doc<KeyRecord>>('SELECT doc FROM p11kms_keys ORDER BY created_at, key_id, region');
  return rows.map((r) => r.doc);
}

export async function readAlias(q: Queryable, scope: Scope, name: string): Promise<AliasRecord | undefined> {
  const { rows } = await q.query<Doc<AliasRecord>>('SELECT doc FROM p11kms_aliases WHERE region = $1 AND account_id = $2 AND alias_name = $3', [
    scope.region,
    scope.accountId,
    name,
  ]);
  return rows[0]?.doc;
}

export async function listAliasesIn(q: Queryable, scope: Scope): Promise<AliasRecord[]> {
  const { rows } = await q.query<Doc<AliasRecord>>('SELECT doc FROM p11kms_aliases WHERE region = $1 AND account_id = $2', [scope.region, scope.accountId]);
  // Sorted here rather than by the database, whose collation need not be code-point order.
  return rows.map((r) => r.doc).sort((a, b) => a.aliasName.localeCompare(b.aliasName));
}

export async function countKeysIn(q: Queryable): Promise<KeyCount[]> {
  const { rows } = await q.query<{ key_state: string; key_spec: string; n: string }>(
    "SELECT doc->>'keyState' AS key_state, doc->>'keySpec' AS key_spec, count(*) AS n FROM p11kms_keys GROUP BY 1, 2",
  );
  return rows.map((r) => ({ keyState: r.key_state, keySpec: r.key_spec, count: Number(r.n) }));
}

/** The aliases naming one key: an index scan (p11kms_aliases_target), whatever the account's other aliases. */
export async function listKeyAliasesIn(q: Queryable, key: AliasTarget): Promise<AliasRecord[]> {
  const { rows } = await q.query<Doc<AliasRecord>>('SELECT doc FROM p11kms_aliases WHERE target_key_id = $1 AND region = $2 AND account_id = $3', [
    key.keyId,
    key.region,
    key.accountId,
  ]);
  return rows.map((r) => r.doc).sort((a, b) => a.aliasName.localeCompare(b.aliasName));
}

export async function readCustomKeyStore(q: Queryable, id: string): Promise<CustomKeyStoreRecord | undefined> {
  const { rows } = await q.query<Doc<CustomKeyStoreRecord>>('SELECT doc FROM p11kms_custom_key_stores WHERE custom_key_store_id = $1', [id]);
  return rows[0]?.doc;
}

export async function listCustomKeyStoresIn(q: Queryable, scope: Scope | undefined): Promise<CustomKeyStoreRecord[]> {
  const { rows } =
    scope === undefined
      ? await q.query<Doc<CustomKeyStoreRecord>>('SELECT doc FROM p11kms_custom_key_stores ORDER BY created_at, custom_key_store_id')
      : await q.query<Doc<CustomKeyStoreRecord>>('SELECT doc FROM p11kms_custom_key_stores WHERE region = $1 AND account_id = $2 ORDER BY created_at, custom_key_store_id', [scope.region, scope.accountId]);
  return rows.map((r) => r.doc);
}

export async function readGrant(q: Queryable, grantId: string): Promise<GrantRecord | undefined> {
  const { rows } = await q.query<Doc<GrantRecord>>('SELECT doc FROM p11kms_grants WHERE grant_id = $1', [grantId]);
  return rows[0]?.doc;
}

export async function listGrantsIn(q: Queryable, key: KeyLocator | undefined): Promise<GrantRecord[]> {
  const { rows } =
    key === undefined
      ? await q.query<Doc<GrantRecord>>('SELECT doc FROM p11kms_grants ORDER BY created_at, grant_id')
      : await q.query<Doc<GrantRecord>>('SELECT doc FROM p11kms_grants WHERE key_id = $1 AND region = $2 ORDER BY created_at, grant_id', [key.keyId, key.region]);
  return rows.map((r) => r.doc);
}
