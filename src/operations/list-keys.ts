import type { KeyRecord } from '../store/records';
import type { OperationHandler } from './context';
import { checkAccountAction } from './shared/key-resolution';
import { listOrder, paginate } from './shared/pagination';

const BY_CREATION = listOrder(['number', 'string'], (k: KeyRecord) => [k.createdAt, k.keyId]);

export const listKeys: OperationHandler<'ListKeys'> = async (input, ctx, services) => {
  checkAccountAction(services, ctx, 'kms:ListKeys');
  const keys = await services.store.listKeys(ctx.scope);
  const { page, ...rest } = paginate('ListKeys', keys, BY_CREATION, input);
  return { Keys: page.map((k) => ({ KeyId: k.keyId, KeyArn: k.arn })), ...rest };
};
