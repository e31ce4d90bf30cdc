import { randomBytes, randomUUID } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { readStoreFiles } from '../src/store/json/store-files';
import type { KeyRecord } from '../src/store/records';

/**
 * Data directories for the store-size rows. Making 100,000 keys through CreateKey would take
 * hours (the token writes two files per key, ~6.6 ms each), so the records are written
 * directly: a copy of a real data directory (token, store) whose symmetric keys are
 * replicated into `count` records. Each replica is a key of its own (key id, ARN, key
 * material id, creation time) and uses the token object of the key it was copied from (the
 * record names that object by its creation id, as every record does). So the store, the key
 * lookups, the policy checks and the audit trail see `count` keys, and the token sees the
 * few objects of the source keys: what grows with the key count is p11kms's, not SoftHSM2's.
 * Every key gets an alias of its own, so aliases grow with the keys too, and every replica a
 * last use (GetKeyLastUsage), as a store in service has: the usage flush then has every used
 * key's use to keep, not only the ones the run uses.
 */
export function makeScaledDataDir(source: string, target: string, count: number): string[] {
  // The store is written whole below: the source's journal, if any, is read into it and not copied.
  fs.cpSync(source, target, { recursive: true, filter: (src) => !/(^|\/)(audit|p11kms\.lock|metadata\.journal)$/.test(src) });
  const file = path.join(target, 'metadata.json');
  const { snapshot } = readStoreFiles(source);
  const store = { ...(JSON.parse(fs.readFileSync(file, 'utf8')) as Record<string, unknown>), keys: [...snapshot.keys.values()], journalSeq: 0 };
  const templates = store.keys.filter((k) => k.keySpec === 'SYMMETRIC_DEFAULT' && k.keyState === 'Enabled');
  if (templates.length === 0) throw new Error('bench: the source data directory has no symmetric key');
  if (templates.some((k) => k.materials.some((m) => !(m as { creationId?: string }).creationId))) {
    // Material recorded without a creation id is found by its label, which names its own key.
    throw new Error('bench: the source keys have no creation ids, so replicas cannot share their token objects');
  }
  const texts = templates.map((k) => ({ keyId: k.keyId, text: JSON.stringify({ ...k, lastUsage: undefined }) }));
  // Every source key stays as it is: its record names its objects (an object no record names
  // would be kept and reported as of an unknown key). Replicas of the symmetric ones fill up to `count`.
  const keys: KeyRecord[] = [...store.keys];
  for (let i = templates.length; keys.length < count; i++) {
    const template = texts[i % texts.length];
    const keyId = randomUUID();
    const record = JSON.parse(template.text.replaceAll(template.keyId, keyId)) as KeyRecord;
    keys.push({
      ...record,
      createdAt: record.createdAt + i,
      materials: record.materials.map((m) => ({ ...m, materialId: randomBytes(32).toString('hex') })),
      lastUsage: { operation: 'Encrypt', at: record.createdAt + i, requestId: randomUUID() },
    });
  }
  // One alias per key, as users name their keys: every authorised use reads the key's aliases
  // (kms:ResourceAliases), so the rows show whether that read grows with the account's aliases.
  const aliases = keys.map((k, i) => ({ region: k.region, accountId: k.accountId, aliasName: `alias/bench-key-${i}`, targetKeyId: k.keyId, createdAt: k.createdAt, updatedAt: k.createdAt }));
  fs.writeFileSync(file, JSON.stringify({ ...store, keys, aliases, grants: [] }));
  // Encrypt is made with the symmetric keys only: the source ones and every replica.
  return [...templates, ...keys.slice(store.keys.length)].map((k) => k.keyId);
}
