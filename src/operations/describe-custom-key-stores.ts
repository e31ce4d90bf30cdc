import { KmsError } from '../errors';
import type { CustomKeyStoreRecord } from '../store/records';
import type { OperationHandler } from './context';
import { checkAccountAction } from './shared/key-resolution';
import { customKeyStoreEntry, customKeyStoreNotFound, keyStoresOf } from './shared/custom-key-stores';
import { listOrder, paginate } from './shared/pagination';

const BY_CREATION = listOrder(['number', 'string'], (c: CustomKeyStoreRecord) => [c.createdAt, c.customKeyStoreId]);

export const describeCustomKeyStores: OperationHandler<'DescribeCustomKeyStores'> = async (input, ctx, services) => {
  keyStoresOf(services);
  checkAccountAction(services, ctx, 'kms:DescribeCustomKeyStores');
  if (input.CustomKeyStoreId !== undefined && input.CustomKeyStoreName !== undefined) {
    throw new KmsError('ValidationException', 'Specify either CustomKeyStoreId or CustomKeyStoreName, not both.');
  }
  let stores = await services.store.listCustomKeyStores(ctx.scope);
  if (input.CustomKeyStoreId !== undefined) {
    stores = stores.filter((c) => c.customKeyStoreId === input.CustomKeyStoreId);
    if (stores.length === 0) throw customKeyStoreNotFound(input.CustomKeyStoreId);
  } else if (input.CustomKeyStoreName !== undefined) {
    stores = stores.filter((c) => c.name === input.CustomKeyStoreName);
    if (stores.length === 0) throw new KmsError('CustomKeyStoreNotFoundException', `Custom key store named '${input.CustomKeyStoreName}' does not exist.`);
  }
  const { page, ...rest } = paginate('DescribeCustomKeyStores', stores, BY_CREATION, input);
  // Each entry shows this process's state, caught up with the record (CONNECTING while it connects).
  for (const c of page) services.keyStores!.converge(c, ctx.requestId);
  return { CustomKeyStores: page.map((c) => customKeyStoreEntry(services, c)), ...rest };
};
