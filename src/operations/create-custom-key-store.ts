import { X509Certificate } from 'node:crypto';
import { KmsError } from '../errors';
import type { CustomKeyStoreRecord } from '../store/records';
import type { OperationHandler } from './context';
import { checkAccountAction } from './shared/key-resolution';
import { keyStoresOf, newCustomKeyStoreId } from './shared/custom-key-stores';
import { checkUniqueName, checkUniqueProxy, checkXksProxy, xksSettingsOf } from './shared/custom-key-store-settings';

/** AWS's default quota of custom key stores per account and Region. */
const MAX_CUSTOM_KEY_STORES = 10;

export const createCustomKeyStore: OperationHandler<'CreateCustomKeyStore'> = async (input, ctx, services) => {
  const keyStores = keyStoresOf(services);
  checkAccountAction(services, ctx, 'kms:CreateCustomKeyStore');
  const type = input.CustomKeyStoreType ?? 'AWS_CLOUDHSM';
  const id = newCustomKeyStoreId();
  const base = {
    customKeyStoreId: id,
    region: ctx.scope.region,
    accountId: ctx.scope.accountId,
    name: input.CustomKeyStoreName,
    type,
    createdAt: services.clock.now(),
    connectRequested: false,
  };
  let record: CustomKeyStoreRecord;
  if (type === 'AWS_CLOUDHSM') {
    for (const member of ['XksProxyUriEndpoint', 'XksProxyUriPath', 'XksProxyAuthenticationCredential', 'XksProxyConnectivity', 'XksProxyVpcEndpointServiceName', 'XksProxyVpcEndpointServiceOwner'] as const) {
      if (input[member] !== undefined) throw new KmsError('ValidationException', `${member} is not valid for a custom key store of type AWS_CLOUDHSM.`);
    }
    for (const member of ['CloudHsmClusterId', 'TrustAnchorCertificate', 'KeyStorePassword'] as const) {
      if (input[member] === undefined) throw new KmsError('ValidationException', `${member} is required for a custom key store of type AWS_CLOUDHSM.`);
    }
    const clusterId = input.CloudHsmClusterId!;
    if (!keyStores.backends.has(clusterId)) {
      throw new KmsError('CloudHsmClusterNotFoundException', `Cluster '${clusterId}' is not a token backend of this deployment (setting tokenBackends).`);
    }
    checkTrustAnchor(input.TrustAnchorCertificate!);
    record = {
      ...base,
      cloudHsmClusterId: clusterId,
      trustAnchorCertificate: input.TrustAnchorCertificate,
      sealedPassword: await keyStores.sealer.seal(id, input.KeyStorePassword!),
    };
  } else {
    for (const member of ['CloudHsmClusterId', 'TrustAnchorCertificate', 'KeyStorePassword'] as const) {
      if (input[member] !== undefined) throw new KmsError('ValidationException', `${member} is not valid for a custom key store of type EXTERNAL_KEY_STORE.`);
    }
    const settings = xksSettingsOf(input, undefined);
    // The model makes RawSecretAccessKey required wherever a credential is given.
    const secret = settings.secret!;
    record = {
      ...base,
      xks: { ...settings.proxy, sealedSecret: await keyStores.sealer.seal(id, secret) },
    };
    // AWS probes a public endpoint's proxy before it creates the store.
    await checkXksProxy(services, ctx, record, secret, 'CreateCustomKeyStore');
  }
  await services.store.transact(async (tx) => {
    const existing = (await tx.listCustomKeyStores()).filter((c) => c.region === ctx.scope.region && c.accountId === ctx.scope.accountId);
    if (existing.length >= MAX_CUSTOM_KEY_STORES) {
      throw new KmsError('LimitExceededException', `You have reached the limit of ${MAX_CUSTOM_KEY_STORES} custom key stores in this account and Region.`);
    }
    checkUniqueName(existing, record.name, undefined);
    for (const other of await tx.listCustomKeyStores()) {
      if (record.cloudHsmClusterId && other.cloudHsmClusterId === record.cloudHsmClusterId) {
        throw new KmsError('CloudHsmClusterInUseException', `Cluster '${record.cloudHsmClusterId}' is already associated with custom key store ${other.customKeyStoreId}.`);
      }
    }
    if (record.xks) checkUniqueProxy(existing, record);
    tx.putCustomKeyStore(record);
  });
  return { CustomKeyStoreId: id };
};

/** The trust anchor must at least be an X.509 certificate in PEM. */
function checkTrustAnchor(pem: string): void {
  try {
    new X509Certificate(pem);
  } catch {
    throw new KmsError('IncorrectTrustAnchorException', 'The TrustAnchorCertificate is not a PEM-encoded X.509 certificate.');
  }
}
