import { KmsError } from '../errors';
import { aliasArn } from '../store/records';
import type { OperationHandler } from './context';
import { checkAliasName } from './shared/alias-names';

export const deleteAlias: OperationHandler<'DeleteAlias'> = async (input, ctx, services) => {
  checkAliasName(input.AliasName);
  await services.store.transact(async (tx) => {
    if (!(await tx.getAlias(ctx.scope, input.AliasName))) {
      throw new KmsError('NotFoundException', `Alias ${aliasArn(ctx.scope, input.AliasName)} is not found.`);
    }
    tx.deleteAlias(ctx.scope, input.AliasName);
  });
  return {};
};
