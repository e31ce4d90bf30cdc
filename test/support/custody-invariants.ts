import { readStoreFiles } from '../../src/store/json/store-files';
import type { CreationIntent, KeyRecord } from '../../src/store/records';
import type { TokenObject } from './token-tool';

/** The metadata store as written on disk (the JSON store's files: metadata.json and its journal). */
export interface StoreOnDisk {
  keys: KeyRecord[];
  intents: CreationIntent[];
}

export function readStore(dataDir: string): StoreOnDisk {
  const { snapshot } = readStoreFiles(dataDir);
  return { keys: [...snapshot.keys.values()], intents: [...snapshot.intents.values()] };
}

const CREATION = /^p11kms#([0-9a-f]{32})$/;

/**
 * Where the store and the token disagree, as a list of findings (empty: they agree exactly).
 * For a quiescent service: no open intents; every material the store says is in the token is
 * there (each creation's objects, under the version's label); every key object and wrapping
 * key in the token is one the store refers to; no torn object without label or id.
 */
export function custodyFindings(store: StoreOnDisk, objects: ReadonlyArray<Pick<TokenObject, 'label' | 'id'>>): string[] {
  const findings: string[] = [];
  if (store.intents.length > 0) findings.push(`${store.intents.length} open creation intent(s): ${store.intents.map((i) => i.creationId).join(', ')}`);
  const expected = new Map<string, string>();
  for (const key of store.keys) {
    for (const m of key.materials) {
      if (m.imported && m.imported.importState !== 'IMPORTED') continue;
      if (!m.creationId) {
        findings.push(`${key.keyId} v${m.version} is recorded without a creation id`);
        continue;
      }
      expected.set(m.creationId, `p11kms:${key.keyId}:v${m.version}`);
    }
    for (const p of key.importParameters ?? []) expected.set(p.wrappingId, `p11kms-import:${key.keyId}:${p.wrappingId}`);
  }
  const seen = new Set<string>();
  for (const o of objects) {
    const creationId = CREATION.exec(o.id)?.[1];
    if (creationId === undefined) {
      if (o.label === '' && o.id === '') findings.push('a token object without label or id (a torn creation)');
      else if (/^p11kms(:|-import:)/.test(o.label)) findings.push(`token object ${o.label} carries no creation id`);
      continue;
    }
    const label = expected.get(creationId);
    if (label === undefined) findings.push(`orphan token object ${o.label} (creation ${creationId})`);
    else if (label !== o.label) findings.push(`token object of creation ${creationId} is labelled ${o.label}, the store says ${label}`);
    else seen.add(creationId);
  }
  for (const [creationId, label] of expected) if (!seen.has(creationId)) findings.push(`missing from the token: ${label} (creation ${creationId})`);
  return findings;
}
