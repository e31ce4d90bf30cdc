import { aliasArn } from '../store/records';
import type { OperationHandler } from './context';
import { loadKeyFor } from './shared/key-resolution';
import { paginate } from './shared/pagination';

export const listAliases: OperationHandler<'ListAliases'> = async (input, ctx, services) => {
  let aliases = await services.store.listAliases(ctx.scope);
  if (input.KeyId !== undefined) {
    const key = await loadKeyFor(services, ctx, input.KeyId, { operation: 'ListAliases', allowedStates: 'any' });
    aliases = aliases.filter((a) => a.targetKeyId === key.keyId);
  }
  const { page, ...rest } = paginate(aliases, (a) => a.aliasName, input.Limit, input.Marker);
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
