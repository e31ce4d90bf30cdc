import { KmsError } from '../errors';
import type { OperationHandler } from './context';
import { checkAccountAction } from './shared/key-resolution';
import { customKeyStoreNotFound, findCustomKeyStore, requireState } from './shared/custom-key-stores';

export const deleteCustomKeyStore: OperationHandler<'DeleteCustomKeyStore'> = async (input, ctx, services) => {
  const record = await findCustomKeyStore(services, ctx, input.CustomKeyStoreId);
  checkAccountAction(services, ctx, 'kms:DeleteCustomKeyStore');
  requireState(record, services, ['DISCONNECTED'], 'DeleteCustomKeyStore');
  await services.store.transact(async (tx) => {
    if (!(await tx.getCustomKeyStore(record.customKeyStoreId))) throw customKeyStoreNotFound(record.customKeyStoreId);
    // Keys pending deletion count too: their material is still in the store.
    // Read in the transaction: a key committed into this store meanwhile must make one of the two refuse.
    const keys = await tx.keysInCustomKeyStore(record.customKeyStoreId);
    if (keys.length > 0) {
      throw new KmsError('CustomKeyStoreHasCMKsException', `Custom key store ${record.customKeyStoreId} still holds ${keys.length} KMS key(s); delete them first.`);
    }
    tx.deleteCustomKeyStore(record.customKeyStoreId);
  });
  return {};
};
