import { randomUUID } from 'node:crypto';
import type { GrantRecord } from '../../src/store/grant-record';
import type { MetadataStore } from '../../src/store/metadata-store';
import { keyArn, type KeyRecord, type Scope } from '../../src/store/records';

// Records for the metadata store's own tests, written straight to a store (no service).

export const scope: Scope = { region: 'us-east-1', accountId: '111122223333' };

export function keyRecord(overrides: Partial<KeyRecord> = {}): KeyRecord {
  const keyId = overrides.keyId ?? randomUUID();
  return {
    keyId,
    ...scope,
    arn: keyArn(scope, keyId),
    createdAt: Date.now(),
    description: '',
    keySpec: 'SYMMETRIC_DEFAULT',
    keyUsage: 'ENCRYPT_DECRYPT',
    origin: 'AWS_KMS',
    keyState: 'Enabled',
    materials: [{ version: 1, materialId: 'a'.repeat(64), createdAt: Date.now() }],
    currentVersion: 1,
    tags: [],
    policy: '{}',
    ...overrides,
  };
}

export function grantRecord(keyId: string, name?: string): GrantRecord {
  const grantId = randomUUID().replace(/-/g, '').padEnd(64, '0');
  return {
    grantId,
    keyId,
    ...scope,
    ...(name !== undefined ? { name } : {}),
    createdAt: Date.now(),
    granteePrincipal: 'arn:aws:iam::111122223333:user/bob',
    issuingAccount: 'arn:aws:iam::111122223333:root',
    operations: ['Decrypt', 'Encrypt'],
    constraints: { encryptionContextEquals: { z: '1', a: '2' } },
    grantToken: `token-${grantId}`,
  };
}

/** Everything a store holds, as its readers see it. */
export async function contentsOf(store: MetadataStore) {
  return {
    keys: await store.listKeys(),
    aliases: await store.listAliases(scope),
    grants: await store.listGrants(),
    customKeyStores: await store.listCustomKeyStores(),
    intents: await store.listIntents(),
    outbox: await store.listOutboxEntries(),
  };
}
