import { KmsError } from '../errors';
import { KEY_ID_ACCEPTS_ALIAS } from '../model/generated/shapes';
import { type AliasRecord, aliasArn } from '../store/records';
import type { OperationHandler } from './context';
import { checkAccountAction, findKey } from './shared/key-resolution';
import { listOrder, paginate } from './shared/pagination';

const BY_NAME = listOrder(['string'], (a: AliasRecord) => [a.aliasName]);

export const listAliases: OperationHandler<'ListAliases'> = async (input, ctx, services) => {
  // AWS authorises ListAliases by IAM policy alone, also when it is filtered by KeyId.
  checkAccountAction(services, ctx, 'kms:ListAliases');
  let aliases: AliasRecord[];
  if (input.KeyId === undefined) {
    aliases = await services.store.listAliases(ctx.scope);
  } else {
    const key = await findKey(services, ctx, input.KeyId, KEY_ID_ACCEPTS_ALIAS['ListAliases.KeyId'] ?? false);
    if (key.accountId !== ctx.caller.accountId) {
      throw new KmsError('AccessDeniedException', `User: ${ctx.caller.principalArn} is not authorized to perform: kms:ListAliases on resource: ${key.arn} because no resource-based policy allows the kms:ListAliases action`);
    }
    aliases = await services.store.listKeyAliases(key);
  }
  const { page, ...rest } = paginate('ListAliases', aliases, BY_NAME, input);
  return {
    Aliases: page.map((a) => ({
      AliasName: a.aliasName,
      AliasArn: aliasArn(ctx.scope, a.aliasName),
      TargetKeyId: a.targetKeyId,
      CreationDate: new Date(a.createdAt),
      LastUpdatedDate: new Date(a.updatedAt),
    })),
    ...rest,
  };
};
