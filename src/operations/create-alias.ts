import { KmsError } from '../errors';
import { aliasArn } from '../store/records';
import type { OperationHandler } from './context';
import { checkAliasName, checkAliasTarget } from './shared/alias-names';
import { checkAliasAction, loadKeyFor } from './shared/key-resolution';
import { requireKeyState } from './shared/key-states';

export const createAlias: OperationHandler<'CreateAlias'> = async (input, ctx, services) => {
  checkAliasName(input.AliasName);
  checkAliasTarget(input.TargetKeyId);
  // AWS: kms:CreateAlias on the alias (IAM policy) and on the key (key policy).
  checkAliasAction(services, ctx, 'kms:CreateAlias', input.AliasName);
  const target = await loadKeyFor(services, ctx, input.TargetKeyId, {
    operation: 'CreateAlias',
    member: 'TargetKeyId',
    states: 'any',
  });
  await services.store.transact(async (tx) => {
    if (await tx.getAlias(ctx.scope, input.AliasName)) {
      throw new KmsError('AlreadyExistsException', `An alias with the name ${aliasArn(ctx.scope, input.AliasName)} already exists`);
    }
    const key = await tx.getKey(target);
    if (!key) throw new KmsError('NotFoundException', `Key '${target.arn}' does not exist`);
    requireKeyState(key, 'manage');
    const now = services.clock.now();
    tx.putAlias({ ...ctx.scope, aliasName: input.AliasName, targetKeyId: key.keyId, createdAt: now, updatedAt: now });
  });
  return {};
};
