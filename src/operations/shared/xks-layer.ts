import { KmsError, type KmsErrorName } from '../../errors';
import { XksCallError, type XksClient, type XksFailure, type XksRequestMetadata } from '../../keystores/xks-client';
import type { CustomKeyStoreRecord, KeyRecord } from '../../store/records';
import type { RequestContext, Services } from '../context';
import { type ExternalLayer, externalHeader } from './ciphertext';
import { keyStoresOf } from './custom-key-stores';

/** The request on whose behalf KMS calls the proxy (its requestMetadata). */
export interface Via {
  ctx: RequestContext;
  operation: string;
}

function xksClientOf(services: Services): XksClient {
  const client = keyStoresOf(services).xks;
  if (!client) throw new KmsError('UnsupportedOperationException', 'External key stores are not available in this deployment.');
  return client as XksClient;
}

function metadataOf(via: Via, key?: KeyRecord): XksRequestMetadata {
  return { awsPrincipalArn: via.ctx.caller.principalArn, kmsOperation: via.operation, kmsRequestId: via.ctx.requestId, ...(key ? { kmsKeyArn: key.arn } : {}) };
}

async function storeAndSecret(services: Services, id: string): Promise<{ store: CustomKeyStoreRecord; secret: string }> {
  const store = await services.store.getCustomKeyStore(id);
  if (!store?.xks) throw new KmsError('KMSInvalidStateException', `Custom key store ${id} is not an external key store.`);
  return { store, secret: await keyStoresOf(services).sealer.open(id, store.xks.sealedSecret) };
}

/** AWS's answers when the proxy fails a cryptographic call: always KMSInvalidStateException. */
function cryptoFailure(key: KeyRecord, failure: XksFailure): KmsError {
  const why: Record<string, string> = {
    timeout: 'did not respond within the timeout allowed by KMS',
    unreachable: 'could not be reached',
    tls: 'failed the TLS handshake',
    'invalid-response': 'returned a response KMS cannot interpret',
  };
  const reason = failure.kind === 'error' ? `rejected the request (${failure.errorName})` : why[failure.kind];
  return new KmsError('KMSInvalidStateException', `The external key store proxy of ${key.arn} ${reason}.`);
}

async function withProxy<T>(key: KeyRecord, call: () => Promise<T>): Promise<T> {
  try {
    return await call();
  } catch (err) {
    if (err instanceof XksCallError) throw cryptoFailure(key, err.failure);
    throw err;
  }
}

/** The outer layer: the proxy encrypts the inner (KMS-material) blob under the external key. */
export async function externalEncrypt(services: Services, via: Via, key: KeyRecord, header: Buffer, inner: Buffer): Promise<{ header: Buffer; layer: ExternalLayer }> {
  const { store, secret } = await storeAndSecret(services, key.customKeyStoreId!);
  const outerHeader = externalHeader(header);
  const sealed = await withProxy(key, () => xksClientOf(services).encrypt(store, secret, key.xksKeyId!, metadataOf(via, key), inner, outerHeader));
  return { header: outerHeader, layer: { iv: sealed.iv, tag: sealed.tag, ciphertextMetadata: sealed.ciphertextMetadata, ciphertext: sealed.ciphertext } };
}

/** Removes the outer layer at the proxy; a proxy that refuses (tampered blob included) is KMSInvalidStateException, as on AWS. */
export async function externalDecrypt(services: Services, via: Via, key: KeyRecord, header: Buffer, layer: ExternalLayer): Promise<Buffer> {
  const { store, secret } = await storeAndSecret(services, key.customKeyStoreId!);
  return withProxy(key, () => xksClientOf(services).decrypt(store, secret, key.xksKeyId!, metadataOf(via, key), layer, header));
}

/** CreateKey's errors for a metadata call that failed, from the spec's table. */
const CREATE_KEY_ERRORS: Record<string, KmsErrorName> = {
  KeyNotFoundException: 'XksKeyNotFoundException',
  InvalidStateException: 'XksKeyInvalidConfigurationException',
  InvalidKeyUsageException: 'XksKeyInvalidConfigurationException',
};

/**
 * One KMS key per external key in a store. CreateKey checks before it asks the proxy and again
 * in its commit transaction, so that of two CreateKeys racing for one external key only one lands.
 */
export function checkExternalKeyFree(keys: readonly KeyRecord[], customKeyStoreId: string, xksKeyId: string): void {
  const inUse = keys.find((k) => k.customKeyStoreId === customKeyStoreId && k.xksKeyId === xksKeyId);
  if (inUse) throw new KmsError('XksKeyAlreadyInUseException', `External key ${xksKeyId} is already used by ${inUse.arn} in custom key store ${customKeyStoreId}.`);
}

/**
 * CreateKey's check of the external key (GetKeyMetadata): it must exist, be AES_256, allow
 * ENCRYPT and DECRYPT and be ENABLED, and no other key of the store may use it.
 */
export async function checkExternalKey(services: Services, ctx: RequestContext, store: CustomKeyStoreRecord, xksKeyId: string): Promise<void> {
  checkExternalKeyFree(await services.store.listKeys(), store.customKeyStoreId, xksKeyId);
  const { secret } = await storeAndSecret(services, store.customKeyStoreId);
  let metadata: { keySpec?: unknown; keyUsage?: unknown; keyStatus?: unknown };
  try {
    metadata = await xksClientOf(services).keyMetadata(store, secret, xksKeyId, metadataOf({ ctx, operation: 'CreateKey' }));
  } catch (err) {
    if (!(err instanceof XksCallError)) throw err;
    const name = err.failure.kind === 'error' ? CREATE_KEY_ERRORS[err.failure.errorName] : undefined;
    if (name) throw new KmsError(name, `The external key ${xksKeyId} cannot back a KMS key: the proxy answered ${(err.failure as { errorName: string }).errorName}.`);
    throw new KmsError('CustomKeyStoreInvalidStateException', `The XKS proxy of custom key store ${store.customKeyStoreId} failed the request (${err.message}).`);
  }
  const usage = Array.isArray(metadata.keyUsage) ? metadata.keyUsage : [];
  if (metadata.keySpec !== 'AES_256' || !usage.includes('ENCRYPT') || !usage.includes('DECRYPT') || metadata.keyStatus !== 'ENABLED') {
    throw new KmsError('XksKeyInvalidConfigurationException', `The external key ${xksKeyId} must be an enabled AES_256 key that can ENCRYPT and DECRYPT (proxy says ${String(metadata.keySpec)}, ${usage.join('/')}, ${String(metadata.keyStatus)}).`);
  }
}
