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
    if (current.connectRequested) return current;
    const next = { ...current, connectRequested: true, connectGeneration: (current.connectGeneration ?? 0) + 1 };
    tx.putCustomKeyStore(next);
    return next;
  });
  // Every other process connects when it hears of the change (or reads the record).
  keyStores.converge(updated, ctx.requestId);
  return {};
};
