import type { OperationHandler } from './context';
import { checkAccountAction } from './shared/key-resolution';
import { findCustomKeyStore, keyStoresOf, requireState } from './shared/custom-key-stores';

/**
 * Returns at once, as on AWS: the store is CONNECTING, then CONNECTED or FAILED
 * (DescribeCustomKeyStores shows which, with AWS's ConnectionErrorCode).
 */
export const connectCustomKeyStore: OperationHandler<'ConnectCustomKeyStore'> = async (input, ctx, services) => {
  const keyStores = keyStoresOf(services);
  const record = await findCustomKeyStore(services, ctx, input.CustomKeyStoreId);
  checkAccountAction(services, ctx, 'kms:ConnectCustomKeyStore');
  // FAILED needs Disconnect first; CONNECTED and CONNECTING succeed without a new attempt.
  requireState(record, services, ['DISCONNECTED', 'CONNECTED', 'CONNECTING'], 'ConnectCustomKeyStore');
  const updated = await services.store.transact(async (tx) => {
    const current = (await tx.getCustomKeyStore(record.customKeyStoreId)) ?? record;
    const next = { ...current, connectRequested: true };
    tx.putCustomKeyStore(next);
    return next;
  });
  if (keyStores.stateOf(record.customKeyStoreId).state === 'DISCONNECTED') keyStores.connect(updated, ctx.requestId);
  return {};
};
