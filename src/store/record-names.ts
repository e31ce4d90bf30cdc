import type { AliasTarget, KeyLocator } from './metadata-store';
import type { Scope } from './records';

// Shared by the read cache's entries, the NOTIFY payload, a transaction's note of what it
// read and the store's change watchers (MetadataStore.watchChanges), so a committed write
// reaches exactly what holds what it changed.
export const keyName = (key: KeyLocator) => `k:${key.keyId}/${key.region}`;
export const keyRegionsName = (keyId: string) => `K:${keyId}`;
export const aliasName = (scope: Scope, name: string) => `a:${scope.region}/${scope.accountId}/${name}`;
export const aliasListName = (scope: Scope) => `A:${scope.region}/${scope.accountId}`;
/** The aliases naming one key (kms:ResourceAliases). */
export const keyAliasesName = (key: AliasTarget) => `t:${key.region}/${key.accountId}/${key.keyId}`;
export const grantName = (grantId: string) => `G:${grantId}`;
export const grantListName = (key: KeyLocator) => `g:${key.keyId}/${key.region}`;
export const intentName = (creationId: string) => `i:${creationId}`;
const CUSTOM_KEY_STORE = 'c:';
export const customKeyStoreName = (id: string) => `${CUSTOM_KEY_STORE}${id}`;
/** The custom key stores among changed record names. */
export const customKeyStoresIn = (names: readonly string[]) => names.filter((n) => n.startsWith(CUSTOM_KEY_STORE)).map((n) => n.slice(CUSTOM_KEY_STORE.length));
