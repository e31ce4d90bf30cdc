import { KmsError, type KmsErrorName } from '../../errors';
import type { ConnectionErrorCodeType, XksProxyAuthenticationCredentialType, XksProxyConnectivityType } from '../../model/generated/types';
import type { CustomKeyStoreRecord } from '../../store/records';
import type { RequestContext, Services } from '../context';
import { keyStoresOf } from './custom-key-stores';
import { failureMessage } from './xks-layer';

export function checkUniqueName(stores: readonly CustomKeyStoreRecord[], name: string, self: string | undefined): void {
  if (stores.some((c) => c.name === name && c.customKeyStoreId !== self)) {
    throw new KmsError('CustomKeyStoreNameInUseException', `A custom key store named '${name}' already exists in this account and Region.`);
  }
}

export function checkUniqueProxy(stores: readonly CustomKeyStoreRecord[], record: CustomKeyStoreRecord): void {
  for (const other of stores) {
    if (other.customKeyStoreId === record.customKeyStoreId || !other.xks || !record.xks) continue;
    if (other.xks.uriEndpoint === record.xks.uriEndpoint && other.xks.uriPath === record.xks.uriPath) {
      throw new KmsError('XksProxyUriInUseException', `The XKS proxy URI ${record.xks.uriEndpoint}${record.xks.uriPath} is already used by custom key store ${other.customKeyStoreId}.`);
    }
  }
}

interface XksInput {
  XksProxyUriEndpoint?: string;
  XksProxyUriPath?: string;
  XksProxyAuthenticationCredential?: XksProxyAuthenticationCredentialType;
  XksProxyConnectivity?: XksProxyConnectivityType;
  XksProxyVpcEndpointServiceName?: string;
  XksProxyVpcEndpointServiceOwner?: string;
}

/**
 * The XKS proxy settings of a Create (every member required) or an Update (members default
 * to the store's). Only PUBLIC_ENDPOINT connectivity exists on premises.
 */
export function xksSettingsOf(input: XksInput, current: CustomKeyStoreRecord['xks'] | undefined): { proxy: Omit<NonNullable<CustomKeyStoreRecord['xks']>, 'sealedSecret'>; secret: string | undefined } {
  const connectivity = input.XksProxyConnectivity ?? current?.connectivity;
  const uriEndpoint = input.XksProxyUriEndpoint ?? current?.uriEndpoint;
  const uriPath = input.XksProxyUriPath ?? current?.uriPath;
  const accessKeyId = input.XksProxyAuthenticationCredential?.AccessKeyId ?? current?.accessKeyId;
  for (const [member, value] of [['XksProxyConnectivity', connectivity], ['XksProxyUriEndpoint', uriEndpoint], ['XksProxyUriPath', uriPath], ['XksProxyAuthenticationCredential', accessKeyId]] as const) {
    if (value === undefined) throw new KmsError('ValidationException', `${member} is required for a custom key store of type EXTERNAL_KEY_STORE.`);
  }
  if (connectivity === 'VPC_ENDPOINT_SERVICE' || input.XksProxyVpcEndpointServiceName !== undefined || input.XksProxyVpcEndpointServiceOwner !== undefined) {
    throw new KmsError('UnsupportedOperationException', 'p11kms has no VPC endpoint services: use XksProxyConnectivity PUBLIC_ENDPOINT.');
  }
  if (/^https:\/\/(\d{1,3}\.){3}\d{1,3}$/.test(uriEndpoint!)) {
    throw new KmsError('XksProxyInvalidConfigurationException', 'XksProxyUriEndpoint must name the proxy by its DNS name, not an IP address.');
  }
  return {
    proxy: { connectivity: connectivity!, uriEndpoint: uriEndpoint!, uriPath: uriPath!, accessKeyId: accessKeyId! },
    secret: input.XksProxyAuthenticationCredential?.RawSecretAccessKey,
  };
}

/** How a failed XKS health check during Create/UpdateCustomKeyStore reaches the caller, as on AWS. */
const PROBE_ERRORS: Partial<Record<ConnectionErrorCodeType, KmsErrorName>> = {
  INVALID_CREDENTIALS: 'XksProxyIncorrectAuthenticationCredentialException',
  XKS_PROXY_INVALID_CONFIGURATION: 'XksProxyInvalidConfigurationException',
  XKS_PROXY_INVALID_RESPONSE: 'XksProxyInvalidResponseException',
  XKS_PROXY_ACCESS_DENIED: 'XksProxyInvalidResponseException',
  XKS_PROXY_INVALID_TLS_CONFIGURATION: 'XksProxyUriUnreachableException',
  XKS_PROXY_NOT_REACHABLE: 'XksProxyUriUnreachableException',
  XKS_PROXY_TIMED_OUT: 'XksProxyUriUnreachableException',
  NETWORK_ERRORS: 'XksProxyUriUnreachableException',
};

/** The health check AWS runs against a public endpoint's proxy when a store is created or changed. */
export async function checkXksProxy(services: Services, ctx: RequestContext, record: CustomKeyStoreRecord, secret: string | undefined, operation: string): Promise<void> {
  const xks = keyStoresOf(services).xks;
  if (!xks) throw new KmsError('UnsupportedOperationException', 'External key stores are not available in this deployment.');
  const plain = secret ?? (await keyStoresOf(services).sealer.open(record.customKeyStoreId, record.xks!.sealedSecret));
  const outcome = await xks.healthCheck(record, plain, ctx.requestId, operation);
  if (outcome.ok) return;
  // The spec's message for the way the call failed (the same as crypto operations give).
  const message = outcome.failure ? failureMessage(outcome.failure) : `The external key store proxy answered the health check, but ${outcome.code === 'XKS_PROXY_NOT_REACHABLE' ? 'every external key manager is UNAVAILABLE' : `failed it (${outcome.code})`}.`;
  throw new KmsError(PROBE_ERRORS[outcome.code] ?? 'XksProxyInvalidResponseException', message);
}
