import { KmsError } from '../errors';
import type { CustomKeyStoreRecord } from '../store/records';
import type { OperationHandler } from './context';
import { checkAccountAction } from './shared/key-resolution';
import { customKeyStoreNotFound, findCustomKeyStore, keyStoresOf, requireState } from './shared/custom-key-stores';
import { checkUniqueName, checkUniqueProxy, checkXksProxy, xksSettingsOf } from './shared/custom-key-store-settings';

/**
 * As on AWS (the model's UpdateCustomKeyStore text): nothing changes while the store is
 * CONNECTING or FAILED; the name, and an external key store's path and credential, change
 * while it is CONNECTED or DISCONNECTED; everything else needs it DISCONNECTED.
 */
export const updateCustomKeyStore: OperationHandler<'UpdateCustomKeyStore'> = async (input, ctx, services) => {
  const keyStores = keyStoresOf(services);
  const record = await findCustomKeyStore(services, ctx, input.CustomKeyStoreId);
  checkAccountAction(services, ctx, 'kms:UpdateCustomKeyStore');
  const id = record.customKeyStoreId;
  const xksMembers = ['XksProxyUriEndpoint', 'XksProxyUriPath', 'XksProxyAuthenticationCredential', 'XksProxyConnectivity', 'XksProxyVpcEndpointServiceName', 'XksProxyVpcEndpointServiceOwner'] as const;
  let next: CustomKeyStoreRecord = input.NewCustomKeyStoreName !== undefined ? { ...record, name: input.NewCustomKeyStoreName } : record;
  let probeSecret: string | undefined;
  requireState(record, services, ['CONNECTED', 'DISCONNECTED'], 'UpdateCustomKeyStore');
  if (record.type === 'AWS_CLOUDHSM') {
    for (const member of xksMembers) {
      if (input[member] !== undefined) throw new KmsError('ValidationException', `${member} is not valid for a custom key store of type AWS_CLOUDHSM.`);
    }
    if (input.KeyStorePassword !== undefined || input.CloudHsmClusterId !== undefined) {
      requireState(record, services, ['DISCONNECTED'], 'changing the password or cluster');
    }
    if (input.CloudHsmClusterId !== undefined && input.CloudHsmClusterId !== record.cloudHsmClusterId) {
      if (!keyStores.backends.has(input.CloudHsmClusterId)) {
        throw new KmsError('CloudHsmClusterNotFoundException', `Cluster '${input.CloudHsmClusterId}' is not a token backend of this deployment (setting tokenBackends).`);
      }
      if (!keyStores.backends.related(record.cloudHsmClusterId!, input.CloudHsmClusterId)) {
        throw new KmsError('CloudHsmClusterNotRelatedException', `Cluster '${input.CloudHsmClusterId}' does not hold the same keys as '${record.cloudHsmClusterId}' (their profiles name different tokens and no common clusterLineage).`);
      }
      next = { ...next, cloudHsmClusterId: input.CloudHsmClusterId };
    }
    if (input.KeyStorePassword !== undefined) next = { ...next, sealedPassword: await keyStores.sealer.seal(id, input.KeyStorePassword) };
  } else {
    for (const member of ['CloudHsmClusterId', 'KeyStorePassword'] as const) {
      if (input[member] !== undefined) throw new KmsError('ValidationException', `${member} is not valid for a custom key store of type EXTERNAL_KEY_STORE.`);
    }
    if (xksMembers.some((m) => input[m] !== undefined)) {
      const changesEndpoint = input.XksProxyUriEndpoint !== undefined || input.XksProxyConnectivity !== undefined || input.XksProxyVpcEndpointServiceName !== undefined;
      if (changesEndpoint) requireState(record, services, ['DISCONNECTED'], 'changing the proxy endpoint or connectivity');
      const settings = xksSettingsOf(input, record.xks);
      probeSecret = settings.secret;
      const sealedSecret = settings.secret !== undefined ? await keyStores.sealer.seal(id, settings.secret) : record.xks!.sealedSecret;
      next = { ...next, xks: { ...settings.proxy, sealedSecret } };
      await checkXksProxy(services, ctx, next, probeSecret, 'UpdateCustomKeyStore');
    }
  }
  await services.store.transact(async (tx) => {
    const current = await tx.getCustomKeyStore(id);
    if (!current) throw customKeyStoreNotFound(id);
    const all = await tx.listCustomKeyStores();
    const sameScope = all.filter((c) => c.region === record.region && c.accountId === record.accountId);
    if (input.NewCustomKeyStoreName !== undefined) checkUniqueName(sameScope, input.NewCustomKeyStoreName, id);
    if (next.cloudHsmClusterId !== current.cloudHsmClusterId && all.some((c) => c.customKeyStoreId !== id && c.cloudHsmClusterId === next.cloudHsmClusterId)) {
      throw new KmsError('CloudHsmClusterInUseException', `Cluster '${next.cloudHsmClusterId}' is already associated with another custom key store.`);
    }
    if (next.xks) checkUniqueProxy(sameScope, next);
    // Connect/Disconnect may have changed connectRequested meanwhile; keep theirs.
    tx.putCustomKeyStore({ ...next, connectRequested: current.connectRequested });
  });
  return {};
};
