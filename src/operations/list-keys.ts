import type { OperationHandler } from './context';
import { checkAccountAction } from './shared/key-resolution';
import { paginate } from './shared/pagination';

export const listKeys: OperationHandler<'ListKeys'> = async (input, ctx, services) => {
  checkAccountAction(services, ctx, 'kms:ListKeys');
  const keys = await services.store.listKeys(ctx.scope);
  const { page, ...rest } = paginate(keys, (k) => k.keyId, input.Limit, input.Marker);
  return { Keys: page.map((k) => ({ KeyId: k.keyId, KeyArn: k.arn })), ...rest };
};
