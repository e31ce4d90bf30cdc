import type { AliasTarget, KeyLocator } from '../metadata-store';
import type { GrantRecord } from '../grant-record';
import type { AliasRecord, AuditOutboxEntry, CreationIntent, CustomKeyStoreRecord, KeyRecord, Scope } from '../records';
import { RecordMap } from './record-map';

/** The JSON store's records in memory, each map keyed by the record's name below. */
export interface Snapshot {
  keys: RecordMap<KeyRecord>;
  aliases: RecordMap<AliasRecord>;
  grants: RecordMap<GrantRecord>;
  customKeyStores: RecordMap<CustomKeyStoreRecord>;
  intents: RecordMap<CreationIntent>;
  outbox: RecordMap<AuditOutboxEntry>;
}

export function emptySnapshot(): Snapshot {
  return { keys: RecordMap.of(), aliases: RecordMap.of(), grants: RecordMap.of(), customKeyStores: RecordMap.of(), intents: RecordMap.of(), outbox: RecordMap.of() };
}

export const aliasKey = (scope: Scope, aliasName: string) => `${scope.region}/${scope.accountId}/${aliasName}`;
export const recordKey = (key: KeyLocator) => `${key.region}/${key.keyId}`;
export const scopeKey = (scope: Scope) => `${scope.region}/${scope.accountId}`;
export const aliasTargetKey = (key: AliasTarget) => `${key.region}/${key.accountId}/${key.keyId}`;
export const targetOf = (alias: AliasRecord): AliasTarget => ({ keyId: alias.targetKeyId, region: alias.region, accountId: alias.accountId });

export const byAliasName = (a: AliasRecord, b: AliasRecord) => a.aliasName.localeCompare(b.aliasName);
export const byCreation = (a: GrantRecord, b: GrantRecord) => a.createdAt - b.createdAt || a.grantId.localeCompare(b.grantId);
export const byRegion = (a: KeyRecord, b: KeyRecord) => a.region.localeCompare(b.region);

export function groupSorted<T>(records: Iterable<T>, groupOf: (r: T) => string, order: (a: T, b: T) => number): Map<string, T[]> {
  const groups = new Map<string, T[]>();
  for (const r of records) {
    const group = groupOf(r);
    const list = groups.get(group);
    if (list) list.push(r);
    else groups.set(group, [r]);
  }
  for (const list of groups.values()) list.sort(order);
  return groups;
}

export function listAliasesIn(aliases: RecordMap<AliasRecord>, scope: Scope): AliasRecord[] {
  return [...aliases.values()].filter((a) => a.region === scope.region && a.accountId === scope.accountId).sort(byAliasName);
}

export function listGrantsIn(grants: RecordMap<GrantRecord>, key: KeyLocator | undefined): GrantRecord[] {
  return [...grants.values()].filter((g) => key === undefined || (g.keyId === key.keyId && g.region === key.region)).sort(byCreation);
}

export function listCustomKeyStoresIn(stores: RecordMap<CustomKeyStoreRecord>, scope: Scope | undefined): CustomKeyStoreRecord[] {
  return [...stores.values()]
    .filter((c) => scope === undefined || (c.region === scope.region && c.accountId === scope.accountId))
    .sort((a, b) => a.createdAt - b.createdAt || a.customKeyStoreId.localeCompare(b.customKeyStoreId));
}
