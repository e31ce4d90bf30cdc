import { randomBytes } from 'node:crypto';
import { KmsError } from '../../errors';
import type { KeyCustody } from '../../custody/key-custody';
import type { KeyStoreConnections } from '../../keystores/connections';
import type { CustomKeyStoresListEntry, KeyState } from '../../model/generated/types';
import type { CustomKeyStoreRecord, KeyRecord } from '../../store/records';
import type { RequestContext, Services } from '../context';

/** AWS's format: `cks-` and 17 hexadecimal characters. */
export function newCustomKeyStoreId(): string {
  return `cks-${randomBytes(9).toString('hex').slice(0, 17)}`;
}

export function keyStoresOf(services: Services): KeyStoreConnections {
  if (!services.keyStores) throw new KmsError('UnsupportedOperationException', 'Custom key stores are not available in this deployment.');
  return services.keyStores;
}

/**
 * The caller's custom key store (stores are per account and region, never shared). This
 * process's connection catches up with the record read (another process may have connected
 * or disconnected the store a moment ago).
 */
export async function findCustomKeyStore(services: Services, ctx: RequestContext, id: string): Promise<CustomKeyStoreRecord> {
  const record = await services.store.getCustomKeyStore(id);
  if (!record || record.region !== ctx.scope.region || record.accountId !== ctx.scope.accountId) throw customKeyStoreNotFound(id);
  services.keyStores?.converge(record, ctx.requestId);
  return record;
}

/**
 * Before a key of a custom key store is refused as unavailable here: the store may have been
 * connected through another process a moment ago (only a store shared by several processes
 * reads the record again, unless the caller has just read it). Waits for this process's attempt.
 */
export async function catchUpWithKeyStore(services: Services, key: KeyRecord, read?: CustomKeyStoreRecord): Promise<void> {
  const keyStores = services.keyStores;
  if (!key.customKeyStoreId || !keyStores || !services.store.fresh || keyStores.isConnected(key.customKeyStoreId)) return;
  const record = read ?? (await services.store.getCustomKeyStore(key.customKeyStoreId));
  if (record) keyStores.converge(record);
  await keyStores.settled(key.customKeyStoreId);
}

export function customKeyStoreNotFound(id: string): KmsError {
  return new KmsError('CustomKeyStoreNotFoundException', `Custom key store '${id}' does not exist.`);
}

/** The DescribeCustomKeyStores entry: never a secret (neither PIN nor SigV4 secret). */
export function customKeyStoreEntry(services: Services, record: CustomKeyStoreRecord): CustomKeyStoresListEntry {
  const connection = keyStoresOf(services).stateOf(record.customKeyStoreId);
  const entry: CustomKeyStoresListEntry = {
    CustomKeyStoreId: record.customKeyStoreId,
    CustomKeyStoreName: record.name,
    ConnectionState: connection.state,
    ...(connection.state === 'FAILED' && connection.errorCode ? { ConnectionErrorCode: connection.errorCode } : {}),
    CreationDate: new Date(record.createdAt),
    CustomKeyStoreType: record.type,
  };
  if (record.type === 'AWS_CLOUDHSM') {
    entry.CloudHsmClusterId = record.cloudHsmClusterId;
    entry.TrustAnchorCertificate = record.trustAnchorCertificate;
  } else if (record.xks) {
    entry.XksProxyConfiguration = {
      Connectivity: record.xks.connectivity,
      AccessKeyId: record.xks.accessKeyId,
      UriEndpoint: record.xks.uriEndpoint,
      UriPath: record.xks.uriPath,
    };
  }
  return entry;
}

export function requireState(record: CustomKeyStoreRecord, services: Services, allowed: readonly string[], action: string): void {
  const { state } = keyStoresOf(services).stateOf(record.customKeyStoreId);
  if (!allowed.includes(state)) {
    throw new KmsError('CustomKeyStoreInvalidStateException', `Custom key store ${record.customKeyStoreId} is ${state}; ${action} needs it ${allowed.join(' or ')}.`);
  }
}

/**
 * A key's state as AWS shows it: keys of a custom key store that is not connected are
 * Unavailable (their material cannot be reached), whatever their own state.
 */
export function effectiveKeyState(services: Services, key: KeyRecord): KeyState {
  if (!key.customKeyStoreId || (key.keyState !== 'Enabled' && key.keyState !== 'Disabled')) return key.keyState;
  return services.keyStores?.isConnected(key.customKeyStoreId) ? key.keyState : 'Unavailable';
}

/**
 * Which token holds a key's material: a connected AWS_CLOUDHSM store's backend token, else
 * the main token (external key store keys keep their KMS-side material there).
 */
export function custodyOf(services: Services, key: KeyRecord): KeyCustody {
  if (!key.customKeyStoreId || key.origin !== 'AWS_CLOUDHSM') return services.custody;
  const custody = services.keyStores?.custodyOf(key.customKeyStoreId);
  if (!custody) throw new KmsError('KMSInvalidStateException', `${key.arn} is unavailable.`);
  return custody;
}
