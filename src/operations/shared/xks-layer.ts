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

const CANNOT_INTERPRET = 'AWS KMS cannot interpret the response from the external key store proxy. If you see this error repeatedly, report it to your external key store proxy administrator.';

/**
 * The messages AWS KMS gives its callers for each way a proxy call fails (XKS Proxy API spec
 * v1, "Error codes", KMS considerations: the exception depends on the operation, the message
 * does not; the proxy's own errorMessage is never passed on). Unknown error names are a
 * response KMS cannot interpret.
 */
const FAILURE_MESSAGES: Record<string, string> = {
  ValidationException: CANNOT_INTERPRET,
  'invalid-response': CANNOT_INTERPRET,
  InvalidStateException: 'The external key associated with this KMS key in an external key store is not enabled in the external key manager. Enable the external key in the external key manager and retry the request.',
  InvalidCiphertextException: 'The external key store proxy rejected the request because the specified ciphertext or encryption context is corrupted, missing, or otherwise invalid.',
  InvalidKeyUsageException: 'The external key associated with this KMS key in an external key store does not support the requested operation. Enable the operation on the key in your external key manager, and try the request again.',
  AuthenticationFailedException: 'The external key store proxy rejected the request because it could not authenticate AWS KMS. Verify the XKS proxy authentication credentials for your external key store and update if necessary.',
  AccessDeniedException: 'The external key store proxy denied access to the operation. Verify that the user and the external key are both authorized for this operation, and try the request again.',
  KeyNotFoundException: 'The external key associated with this KMS key in an external key store was not found in its external key manager. If the external key ID associated with this KMS key is incorrect, create a new KMS key with the correct external key ID.',
  InvalidUriPathException: 'The external key store proxy rejected the request because of an invalid URI path. Verify the URI path for your external key store and update if necessary.',
  UnsupportedOperationException: 'The external key store proxy rejected the request because it does not support the requested operation. If you see this error repeatedly, report it to your external key store proxy administrator.',
  DependencyTimeoutException: 'The external key store proxy did not respond to the request in the time allotted. Retry the request. If you see this error repeatedly, report it to your external key store proxy administrator.',
  ThrottlingException: 'The external key store proxy rejected the request due to a very high request rate. Reduce the frequency of your calls using KMS keys in this external key store.',
  InternalException: 'The external key store proxy rejected the request because it cannot communicate with the external key manager. Verify that the external key store proxy configuration is correct and that the external key manager is available.',
  unreachable: 'AWS KMS cannot communicate with the external key store proxy. This might be a transient network issue. If you see this error repeatedly, verify that your external key store proxy is active and is connected to the network, and that its endpoint URI is correct in your external keystore.',
  tls: 'AWS KMS cannot establish a TLS connection to the external key store proxy. Verify the TLS configuration, including its certificate.',
  timeout: 'AWS KMS rejected the request because the external key store proxy did not respond in time. Retry the request. If you see this error repeatedly, report it to your external key store proxy administrator.',
};

export function failureMessage(failure: XksFailure): string {
  const key = failure.kind === 'error' ? failure.errorName : failure.kind;
  return Object.hasOwn(FAILURE_MESSAGES, key) ? FAILURE_MESSAGES[key] : CANNOT_INTERPRET;
}

/** AWS's answer when the proxy fails a cryptographic call: always KMSInvalidStateException. */
function cryptoFailure(failure: XksFailure): KmsError {
  return new KmsError('KMSInvalidStateException', failureMessage(failure));
}

async function withProxy<T>(call: () => Promise<T>): Promise<T> {
  try {
    return await call();
  } catch (err) {
    if (err instanceof XksCallError) throw cryptoFailure(err.failure);
    throw err;
  }
}

/** The outer layer: the proxy encrypts the inner (KMS-material) blob under the external key. */
export async function externalEncrypt(services: Services, via: Via, key: KeyRecord, header: Buffer, inner: Buffer): Promise<{ header: Buffer; layer: ExternalLayer }> {
  const { store, secret } = await storeAndSecret(services, key.customKeyStoreId!);
  const outerHeader = externalHeader(header);
  const sealed = await withProxy(() => xksClientOf(services).encrypt(store, secret, key.xksKeyId!, metadataOf(via, key), inner, outerHeader));
  return { header: outerHeader, layer: { iv: sealed.iv, tag: sealed.tag, ciphertextMetadata: sealed.ciphertextMetadata, ciphertext: sealed.ciphertext } };
}

/** Removes the outer layer at the proxy; a proxy that refuses (tampered blob included) is KMSInvalidStateException, as on AWS. */
export async function externalDecrypt(services: Services, via: Via, key: KeyRecord, header: Buffer, layer: ExternalLayer): Promise<Buffer> {
  const { store, secret } = await storeAndSecret(services, key.customKeyStoreId!);
  return withProxy(() => xksClientOf(services).decrypt(store, secret, key.xksKeyId!, metadataOf(via, key), layer, header));
}

/** CreateKey's errors for a metadata call that failed, from the spec's table. */
const CREATE_KEY_ERRORS: Record<string, KmsErrorName> = {
  KeyNotFoundException: 'XksKeyNotFoundException',
  InvalidStateException: 'XksKeyInvalidConfigurationException',
  InvalidKeyUsageException: 'XksKeyInvalidConfigurationException',
  // The proxy's secondary authorisation refused the caller: KMSInvalidStateException for CreateKey too.
  AccessDeniedException: 'KMSInvalidStateException',
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
    const name = err.failure.kind === 'error' && Object.hasOwn(CREATE_KEY_ERRORS, err.failure.errorName) ? CREATE_KEY_ERRORS[err.failure.errorName] : undefined;
    throw new KmsError(name ?? 'CustomKeyStoreInvalidStateException', failureMessage(err.failure));
  }
  const usage = Array.isArray(metadata.keyUsage) ? metadata.keyUsage : [];
  if (metadata.keySpec !== 'AES_256' || !usage.includes('ENCRYPT') || !usage.includes('DECRYPT') || metadata.keyStatus !== 'ENABLED') {
    throw new KmsError('XksKeyInvalidConfigurationException', `The external key ${xksKeyId} must be an enabled AES_256 key that can ENCRYPT and DECRYPT (proxy says ${String(metadata.keySpec)}, ${usage.join('/')}, ${String(metadata.keyStatus)}).`);
  }
}
