import type { OperationHandler } from './context';
import { checkAccountAction } from './shared/key-resolution';
import { findCustomKeyStore, keyStoresOf, requireState } from './shared/custom-key-stores';

export const disconnectCustomKeyStore: OperationHandler<'DisconnectCustomKeyStore'> = async (input, ctx, services) => {
  const record = await findCustomKeyStore(services, ctx, input.CustomKeyStoreId);
  checkAccountAction(services, ctx, 'kms:DisconnectCustomKeyStore');
  requireState(record, services, ['CONNECTED', 'CONNECTING', 'FAILED'], 'DisconnectCustomKeyStore');
  const keyStores = keyStoresOf(services);
  const updated = await services.store.transact(async (tx) => {
    const current = (await tx.getCustomKeyStore(record.customKeyStoreId)) ?? record;
    if (!current.connectRequested) return current;
    const next = { ...current, connectRequested: false, connectGeneration: (current.connectGeneration ?? 0) + 1 };
    tx.putCustomKeyStore(next);
    return next;
  });
  // Operations already running on the store's token finish first; new ones see it disconnected.
  // The other processes close theirs when they hear of the change.
  keyStores.converge(updated, ctx.requestId);
  await keyStores.settled(record.customKeyStoreId);
  return {};
};
