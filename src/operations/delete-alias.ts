import { KmsError } from '../errors';
import { aliasArn } from '../store/records';
import type { OperationHandler } from './context';
import { checkAliasName } from './shared/alias-names';
import { checkAliasAction, loadKeyFor } from './shared/key-resolution';

export const deleteAlias: OperationHandler<'DeleteAlias'> = async (input, ctx, services) => {
  checkAliasName(input.AliasName);
  // AWS: kms:DeleteAlias on the alias (IAM policy) and on its key (key policy).
  checkAliasAction(services, ctx, 'kms:DeleteAlias', input.AliasName);
  const alias = await services.store.getAlias(ctx.scope, input.AliasName);
  if (alias) await loadKeyFor(services, ctx, alias.targetKeyId, { operation: 'DeleteAlias', member: 'TargetKeyId', allowedStates: 'any' });
  await services.store.transact(async (tx) => {
    if (!(await tx.getAlias(ctx.scope, input.AliasName))) {
      throw new KmsError('NotFoundException', `Alias ${aliasArn(ctx.scope, input.AliasName)} is not found.`);
    }
    tx.deleteAlias(ctx.scope, input.AliasName);
  });
  return {};
};
