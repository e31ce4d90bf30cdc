import type { KeyLocator } from '../metadata-store';
import type { Scope } from '../records';

// Shared by the read cache's entries, the NOTIFY payload and a transaction's note of what it
// read, so a committed write invalidates exactly the entries that hold what it changed.
export const keyName = (key: KeyLocator) => `k:${key.keyId}/${key.region}`;
export const keyRegionsName = (keyId: string) => `K:${keyId}`;
export const aliasName = (scope: Scope, name: string) => `a:${scope.region}/${scope.accountId}/${name}`;
export const aliasListName = (scope: Scope) => `A:${scope.region}/${scope.accountId}`;
export const grantName = (grantId: string) => `G:${grantId}`;
export const grantListName = (key: KeyLocator) => `g:${key.keyId}/${key.region}`;
export const intentName = (creationId: string) => `i:${creationId}`;
