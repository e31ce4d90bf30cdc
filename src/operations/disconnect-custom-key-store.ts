import type { OperationHandler } from './context';
import { checkAccountAction } from './shared/key-resolution';
import { findCustomKeyStore, keyStoresOf, requireState } from './shared/custom-key-stores';

export const disconnectCustomKeyStore: OperationHandler<'DisconnectCustomKeyStore'> = async (input, ctx, services) => {
  const record = await findCustomKeyStore(services, ctx, input.CustomKeyStoreId);
  checkAccountAction(services, ctx, 'kms:DisconnectCustomKeyStore');
  requireState(record, services, ['CONNECTED', 'CONNECTING', 'FAILED'], 'DisconnectCustomKeyStore');
  await services.store.transact(async (tx) => {
    const current = (await tx.getCustomKeyStore(record.customKeyStoreId)) ?? record;
    tx.putCustomKeyStore({ ...current, connectRequested: false });
  });
  // Operations already running on the store's token finish first; new ones see it disconnected.
  await keyStoresOf(services).disconnect(record.customKeyStoreId);
  return {};
};
