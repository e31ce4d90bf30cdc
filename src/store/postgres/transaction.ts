import { createHash } from 'node:crypto';
import type { PoolClient } from 'pg';
import type { GrantRecord } from '../grant-record';
import { IdKeyedWrites } from '../id-keyed-writes';
import type { KeyLocator, StoreTransaction } from '../metadata-store';
import { type AliasRecord, type CreationIntent, type CustomKeyStoreRecord, isMultiRegion, type KeyRecord, type Scope, withSharedFields } from '../records';
import { byRegion, type Doc, listAliasesIn, listCustomKeyStoresIn, listGrantsIn, listKeysIn, readAlias, readCustomKeyStore, readGrant, readKey, readKeyRegions } from './reads';
import { aliasListName, aliasName, customKeyStoreName, grantListName, grantName, intentName, keyAliasesName, keyName, keyRegionsName } from '../record-names';

/** What makes grants with one Name the same grant (CreateGrant's Name idempotency). */
export function grantNameFingerprint(g: GrantRecord): string | null {
  if (g.name === undefined) return null;
  return createHash('sha256')
    .update(JSON.stringify([g.name, g.granteePrincipal, g.retiringPrincipal ?? null, g.issuingAccount, g.operations, g.constraints ?? null]))
    .digest('hex');
}

/**
 * Reads go to the database inside the transaction; writes are buffered (last one per record
 * wins) and written at the end. Whether each record existed when read decides between
 * INSERT (so the database's uniqueness refuses a record another transaction just made)
 * and UPDATE.
 */
export class PostgresTransaction extends IdKeyedWrites implements StoreTransaction {
  /** keyName → the record written (null: deleted). */
  private readonly keys = new Map<string, { locator: KeyLocator; record: KeyRecord | null }>();
  /**
   * Multi-Region keys: the record written last per key id, whose shared fields every other
   * region's record takes (applied to records read later and, at the end, to the records of
   * other regions this transaction did not write).
   */
  private readonly sharedFrom = new Map<string, KeyRecord>();
  private readonly aliases = new Map<string, { scope: Scope; name: string; record: AliasRecord | null }>();
  private readonly grants = new Map<string, { key: KeyLocator | undefined; record: GrantRecord | null }>();
  /** Record name → whether the database held it when this transaction read it. */
  private readonly existed = new Map<string, boolean>();

  constructor(private readonly client: PoolClient) {
    super();
  }

  async getKey(key: KeyLocator): Promise<KeyRecord | undefined> {
    const own = this.keys.get(keyName(key));
    if (own !== undefined) return own.record ?? undefined;
    const found = await readKey(this.client, key);
    this.existed.set(keyName(key), found !== undefined);
    return found && this.shared(found);
  }

  async listKeyRegions(keyId: string): Promise<KeyRecord[]> {
    const merged = new Map<string, KeyRecord>();
    for (const k of await readKeyRegions(this.client, keyId)) {
      this.existed.set(keyName(k), true);
      merged.set(keyName(k), this.shared(k));
    }
    for (const [name, own] of this.keys) {
      if (own.locator.keyId !== keyId) continue;
      if (own.record === null) merged.delete(name);
      else merged.set(name, own.record);
    }
    return [...merged.values()].sort(byRegion);
  }

  putKey(record: KeyRecord): void {
    this.keys.set(keyName(record), { locator: record, record });
    if (!isMultiRegion(record)) return;
    this.sharedFrom.set(record.keyId, record);
    for (const [name, own] of this.keys) {
      if (own.record && own.record.keyId === record.keyId && own.record.region !== record.region) {
        this.keys.set(name, { locator: own.locator, record: withSharedFields(own.record, record) });
      }
    }
  }

  deleteKey(key: KeyLocator): void {
    this.keys.set(keyName(key), { locator: { keyId: key.keyId, region: key.region }, record: null });
  }

  private shared(record: KeyRecord): KeyRecord {
    const source = this.sharedFrom.get(record.keyId);
    return source && source.region !== record.region ? withSharedFields(record, source) : record;
  }

  async getAlias(scope: Scope, name: string): Promise<AliasRecord | undefined> {
    const own = this.aliases.get(aliasName(scope, name));
    if (own !== undefined) return own.record ?? undefined;
    const found = await readAlias(this.client, scope, name);
    this.existed.set(aliasName(scope, name), found !== undefined);
    return found;
  }

  async listAliases(scope: Scope): Promise<AliasRecord[]> {
    const merged = new Map<string, AliasRecord>();
    for (const a of await listAliasesIn(this.client, scope)) {
      this.existed.set(aliasName(scope, a.aliasName), true);
      merged.set(a.aliasName, a);
    }
    for (const own of this.aliases.values()) {
      if (own.scope.region !== scope.region || own.scope.accountId !== scope.accountId) continue;
      if (own.record === null) merged.delete(own.name);
      else merged.set(own.name, own.record);
    }
    return [...merged.values()].sort((a, b) => a.aliasName.localeCompare(b.aliasName));
  }

  putAlias(record: AliasRecord): void {
    this.aliases.set(aliasName(record, record.aliasName), { scope: record, name: record.aliasName, record });
  }

  deleteAlias(scope: Scope, name: string): void {
    this.aliases.set(aliasName(scope, name), { scope, name, record: null });
  }

  async getGrant(grantId: string): Promise<GrantRecord | undefined> {
    const own = this.grants.get(grantId);
    if (own !== undefined) return own.record ?? undefined;
    const found = await readGrant(this.client, grantId);
    this.existed.set(grantName(grantId), found !== undefined);
    return found;
  }

  async listGrants(key: KeyLocator): Promise<GrantRecord[]> {
    const merged = new Map<string, GrantRecord>();
    for (const g of await listGrantsIn(this.client, key)) {
      this.existed.set(grantName(g.grantId), true);
      merged.set(g.grantId, g);
    }
    for (const [grantId, own] of this.grants) {
      if (own.key?.keyId !== key.keyId || own.key.region !== key.region) continue;
      if (own.record === null) merged.delete(grantId);
      else merged.set(grantId, own.record);
    }
    return [...merged.values()].sort((a, b) => a.createdAt - b.createdAt || a.grantId.localeCompare(b.grantId));
  }

  putGrant(record: GrantRecord): void {
    this.grants.set(record.grantId, { key: record, record });
  }

  deleteGrant(grantId: string): void {
    this.grants.set(grantId, { key: this.grants.get(grantId)?.key, record: null });
  }

  async getCustomKeyStore(id: string): Promise<CustomKeyStoreRecord | undefined> {
    const own = this.customKeyStores.get(id);
    if (own !== undefined) return own ?? undefined;
    return readCustomKeyStore(this.client, id);
  }

  async keysInCustomKeyStore(customKeyStoreId: string): Promise<KeyRecord[]> {
    // A scan, read in this SERIALIZABLE transaction: rare (DeleteCustomKeyStore) and it must conflict with a concurrent CreateKey.
    const merged = new Map((await listKeysIn(this.client, undefined)).map((k) => [keyName(k), this.shared(k)]));
    for (const [name, own] of this.keys) {
      if (own.record === null) merged.delete(name);
      else merged.set(name, own.record);
    }
    return [...merged.values()].filter((k) => k.customKeyStoreId === customKeyStoreId);
  }

  async listCustomKeyStores(): Promise<CustomKeyStoreRecord[]> {
    const merged = new Map((await listCustomKeyStoresIn(this.client, undefined)).map((c) => [c.customKeyStoreId, c]));
    for (const [id, own] of this.customKeyStores) {
      if (own === null) merged.delete(id);
      else merged.set(id, own);
    }
    return [...merged.values()].sort((a, b) => a.createdAt - b.createdAt || a.customKeyStoreId.localeCompare(b.customKeyStoreId));
  }

  async getIntent(creationId: string): Promise<CreationIntent | undefined> {
    const own = this.intents.get(creationId);
    if (own !== undefined) return own ?? undefined;
    const { rows } = await this.client.query<Doc<CreationIntent>>('SELECT doc FROM p11kms_intents WHERE creation_id = $1', [creationId]);
    this.existed.set(intentName(creationId), rows.length > 0);
    return rows[0]?.doc;
  }

  /** Whether the body buffered any write (a transaction that buffered none changes nothing). */
  buffersWrites(): boolean {
    return this.keys.size + this.aliases.size + this.grants.size + this.idKeyedWriteCount() > 0;
  }

  /** Writes the buffered changes; returns the cache names they touch (for NOTIFY). */
  async write(): Promise<string[]> {
    const changed: string[] = [];
    const q = (sql: string, params: unknown[]) => this.client.query(sql, params);
    // Deletes first, so a record removed and another made in its place do not collide.
    for (const { locator, record } of this.keys.values()) {
      if (record === null) await q('DELETE FROM p11kms_keys WHERE key_id = $1 AND region = $2', [locator.keyId, locator.region]);
    }
    // An alias changes the alias lists of the key it named before (deleted or moved) and of the one it names now.
    const formerTarget = async (scope: Scope, name: string, sql: string) => {
      const { rows } = await this.client.query<{ target_key_id: string }>(sql, [scope.region, scope.accountId, name]);
      for (const r of rows) changed.push(keyAliasesName({ ...scope, keyId: r.target_key_id }));
    };
    for (const { scope, name, record } of this.aliases.values()) {
      if (record === null) await formerTarget(scope, name, 'DELETE FROM p11kms_aliases WHERE region = $1 AND account_id = $2 AND alias_name = $3 RETURNING target_key_id');
      else await formerTarget(scope, name, 'SELECT target_key_id FROM p11kms_aliases WHERE region = $1 AND account_id = $2 AND alias_name = $3');
    }
    for (const [creationId, intent] of this.intents) {
      if (intent === null) {
        // Gone already: another process resolved it first; whoever reads it next decides anew.
        const { rowCount } = await q('DELETE FROM p11kms_intents WHERE creation_id = $1', [creationId]);
        if (rowCount === 0 && this.existed.get(intentName(creationId)) === true) throw Object.assign(new Error('intent vanished during the transaction'), { code: '40001' });
      } else {
        await this.upsert(intentName(creationId), {
          insert: ['INSERT INTO p11kms_intents (creation_id, created_at, doc) VALUES ($1, $2, $3)', [creationId, intent.createdAt, JSON.stringify(intent)]],
          update: ['UPDATE p11kms_intents SET doc = $2 WHERE creation_id = $1', [creationId, JSON.stringify(intent)]],
          conflict: '(creation_id) DO UPDATE SET doc = EXCLUDED.doc',
        });
      }
    }
    for (const [grantId, { record }] of this.grants) {
      if (record !== null) continue;
      const { rows } = await this.client.query<{ key_id: string; region: string }>('DELETE FROM p11kms_grants WHERE grant_id = $1 RETURNING key_id, region', [grantId]);
      for (const r of rows) changed.push(grantListName({ keyId: r.key_id, region: r.region }));
    }
    for (const [name, { locator, record }] of this.keys) {
      changed.push(name, keyRegionsName(locator.keyId));
      if (record === null) continue;
      await this.upsert(name, {
        insert: [
          'INSERT INTO p11kms_keys (key_id, region, account_id, created_at, doc) VALUES ($1, $2, $3, $4, $5)',
          [record.keyId, record.region, record.accountId, record.createdAt, JSON.stringify(record)],
        ],
        update: ['UPDATE p11kms_keys SET doc = $3 WHERE key_id = $1 AND region = $2', [record.keyId, record.region, JSON.stringify(record)]],
        conflict: '(key_id, region) DO UPDATE SET doc = EXCLUDED.doc',
      });
    }
    // The other regions of a multi-Region key written here take its shared fields.
    for (const [keyId, source] of this.sharedFrom) {
      for (const sibling of await readKeyRegions(this.client, keyId)) {
        if (this.keys.has(keyName(sibling))) continue;
        changed.push(keyName(sibling));
        await q('UPDATE p11kms_keys SET doc = $3 WHERE key_id = $1 AND region = $2', [sibling.keyId, sibling.region, JSON.stringify(withSharedFields(sibling, source))]);
      }
    }
    for (const [name, { scope, record }] of this.aliases) {
      changed.push(name, aliasListName(scope));
      if (record === null) continue;
      changed.push(keyAliasesName({ keyId: record.targetKeyId, region: record.region, accountId: record.accountId }));
      await this.upsert(name, {
        insert: [
          'INSERT INTO p11kms_aliases (region, account_id, alias_name, target_key_id, doc) VALUES ($1, $2, $3, $4, $5)',
          [record.region, record.accountId, record.aliasName, record.targetKeyId, JSON.stringify(record)],
        ],
        update: [
          'UPDATE p11kms_aliases SET target_key_id = $4, doc = $5 WHERE region = $1 AND account_id = $2 AND alias_name = $3',
          [record.region, record.accountId, record.aliasName, record.targetKeyId, JSON.stringify(record)],
        ],
        conflict: '(region, account_id, alias_name) DO UPDATE SET target_key_id = EXCLUDED.target_key_id, doc = EXCLUDED.doc',
      });
    }
    for (const [grantId, { record }] of this.grants) {
      changed.push(grantName(grantId));
      if (record === null) continue;
      changed.push(grantListName(record));
      // Grants are immutable: one made again by the same id is the same grant.
      await this.upsert(grantName(grantId), {
        insert: [
          'INSERT INTO p11kms_grants (grant_id, key_id, region, created_at, name_fingerprint, doc) VALUES ($1, $2, $3, $4, $5, $6)',
          [grantId, record.keyId, record.region, record.createdAt, grantNameFingerprint(record), JSON.stringify(record)],
        ],
        update: ['UPDATE p11kms_grants SET doc = $2 WHERE grant_id = $1', [grantId, JSON.stringify(record)]],
        conflict: '(grant_id) DO UPDATE SET doc = EXCLUDED.doc',
      });
    }
    // Last writer wins, as serializable transactions make it safe.
    for (const [id, record] of this.customKeyStores) {
      changed.push(customKeyStoreName(id));
      if (record === null) await q('DELETE FROM p11kms_custom_key_stores WHERE custom_key_store_id = $1', [id]);
      else {
        await q(
          'INSERT INTO p11kms_custom_key_stores (custom_key_store_id, region, account_id, created_at, doc) VALUES ($1, $2, $3, $4, $5) ON CONFLICT (custom_key_store_id) DO UPDATE SET doc = EXCLUDED.doc',
          [id, record.region, record.accountId, record.createdAt, JSON.stringify(record)],
        );
      }
    }
    // Never cached nor read by requests: no change names. A delete finding nothing is fine (delivered by another process).
    for (const [id, entry] of this.outbox) {
      if (entry === null) await q('DELETE FROM p11kms_audit_outbox WHERE id = $1', [id]);
      else {
        await q('INSERT INTO p11kms_audit_outbox (id, owner, created_at, doc) VALUES ($1, $2, $3, $4) ON CONFLICT (id) DO UPDATE SET doc = EXCLUDED.doc', [
          id,
          entry.owner,
          entry.createdAt,
          JSON.stringify(entry),
        ]);
      }
    }
    return changed;
  }

  private async upsert(name: string, sql: { insert: [string, unknown[]]; update: [string, unknown[]]; conflict: string }): Promise<void> {
    const existed = this.existed.get(name);
    if (existed === true) {
      const { rowCount } = await this.client.query(...sql.update);
      // Gone since this transaction read it: the other transaction won; run the body again.
      if (rowCount === 0) throw Object.assign(new Error('record vanished during the transaction'), { code: '40001' });
    } else if (existed === false) {
      await this.client.query(...sql.insert);
    } else {
      await this.client.query(`${sql.insert[0]} ON CONFLICT ${sql.conflict}`, sql.insert[1]);
    }
  }
}
