import { KmsError } from '../errors';
import { aliasArn } from '../store/records';
import type { OperationHandler } from './context';
import { aliasTargetIn, loadAliasTarget } from './shared/alias-names';

export const createAlias: OperationHandler<'CreateAlias'> = async (input, ctx, services) => {
  // AWS: kms:CreateAlias on the alias (IAM policy) and on the key (key policy).
  const target = await loadAliasTarget(services, ctx, 'CreateAlias', input.AliasName, input.TargetKeyId);
  await services.store.transact(async (tx) => {
    if (await tx.getAlias(ctx.scope, input.AliasName)) {
      throw new KmsError('AlreadyExistsException', `An alias with the name ${aliasArn(ctx.scope, input.AliasName)} already exists`);
    }
    const key = await aliasTargetIn(tx, target);
    const now = services.clock.now();
    tx.putAlias({ ...ctx.scope, aliasName: input.AliasName, targetKeyId: key.keyId, createdAt: now, updatedAt: now });
  });
  return {};
};
