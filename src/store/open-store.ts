import type { Logger } from 'pino';
import { isSharedStoreUrl } from '../config/config';
import { JsonFileStore } from './json/json-file-store';
import type { MetadataStore } from './metadata-store';
import type { IdleCheck } from './postgres/checked-pool';

/**
 * postgres://… (shared by a cluster), else the JSON file in dataDir. The PostgreSQL store is
 * loaded only when named: node-postgres and its dependencies cost ~100 ms of every start-up
 * on the JSON store otherwise (a tenth of the ≤ 1 s aim with 10,000 keys).
 */
export async function openStore(options: {
  storeUrl: string | undefined;
  dataDir: string;
  log: Logger;
  callTimeoutMs?: number;
  idleCheck?: IdleCheck;
  journalFromBytes?: number;
}): Promise<MetadataStore> {
  if (options.storeUrl === undefined || options.storeUrl === '') return JsonFileStore.open(options.dataDir, { journalFromBytes: options.journalFromBytes, log: options.log });
  if (isSharedStoreUrl(options.storeUrl)) {
    const { PostgresStore } = await import('./postgres/postgres-store');
    return PostgresStore.open(options.storeUrl, options.log, { callTimeoutMs: options.callTimeoutMs, idleCheck: options.idleCheck });
  }
  throw new Error(`setting storeUrl must be a postgres:// URL (or unset for the JSON store under dataDir), got '${redactUrl(options.storeUrl)}'`);
}

/** A store URL as it may be logged: without its password. */
export function redactUrl(url: string): string {
  return url.replace(/\/\/([^:@/]+):[^@/]*@/, '//$1:***@');
}
