import { KmsError } from '../errors';
import { aliasArn } from '../store/records';
import type { OperationHandler } from './context';
import { authoriseAliasTarget, checkAliasName, authoriseTargetIn } from './shared/alias-names';
import { checkAliasAction } from './shared/key-resolution';

export const deleteAlias: OperationHandler<'DeleteAlias'> = async (input, ctx, services) => {
  checkAliasName(input.AliasName);
  // AWS: kms:DeleteAlias on the alias (IAM policy) and on its key (key policy).
  checkAliasAction(services, ctx, 'kms:DeleteAlias', input.AliasName);
  const authorised = await authoriseAliasTarget(services, ctx, input.AliasName, 'DeleteAlias');
  await services.store.transact(async (tx) => {
    const alias = await tx.getAlias(ctx.scope, input.AliasName);
    await authoriseTargetIn(tx, services, ctx, alias, authorised, 'DeleteAlias');
    if (!alias) throw new KmsError('NotFoundException', `Alias ${aliasArn(ctx.scope, input.AliasName)} is not found.`);
    tx.deleteAlias(ctx.scope, input.AliasName);
  });
  return {};
};
