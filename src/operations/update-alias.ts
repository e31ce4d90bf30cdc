import { KmsError } from '../errors';
import { aliasArn } from '../store/records';
import type { OperationHandler } from './context';
import { authoriseAliasTarget, checkAliasName, checkAliasTarget, authoriseTargetIn } from './shared/alias-names';
import { checkAliasAction, loadKeyFor } from './shared/key-resolution';
import { requireKeyState } from './shared/key-states';

export const updateAlias: OperationHandler<'UpdateAlias'> = async (input, ctx, services) => {
  checkAliasName(input.AliasName);
  checkAliasTarget(input.TargetKeyId);
  // AWS: kms:UpdateAlias on the alias (IAM policy), the current and the new target key (key policies).
  checkAliasAction(services, ctx, 'kms:UpdateAlias', input.AliasName);
  const target = await loadKeyFor(services, ctx, input.TargetKeyId, {
    operation: 'UpdateAlias',
    member: 'TargetKeyId',
    states: 'any',
  });
  const authorised = await authoriseAliasTarget(services, ctx, input.AliasName, 'UpdateAlias');
  await services.store.transact(async (tx) => {
    const alias = await tx.getAlias(ctx.scope, input.AliasName);
    await authoriseTargetIn(tx, services, ctx, alias, authorised, 'UpdateAlias');
    if (!alias) throw new KmsError('NotFoundException', `Alias ${aliasArn(ctx.scope, input.AliasName)} is not found.`);
    const key = await tx.getKey(target);
    if (!key) throw new KmsError('NotFoundException', `Key '${target.arn}' does not exist`);
    requireKeyState(key, 'manage');
    const previous = await tx.getKey({ keyId: alias.targetKeyId, region: alias.region });
    // AWS: the new target must be of the same type and key usage as the current one.
    if (previous && (previous.keySpec === 'SYMMETRIC_DEFAULT') !== (key.keySpec === 'SYMMETRIC_DEFAULT')) {
      throw new KmsError('ValidationException', `${key.arn} is not the same key type as the current target ${previous.arn}.`);
    }
    if (previous && previous.keyUsage !== key.keyUsage) {
      throw new KmsError('ValidationException', `${key.arn} key usage ${key.keyUsage} differs from the current target's ${previous.keyUsage}.`);
    }
    tx.putAlias({ ...alias, targetKeyId: key.keyId, updatedAt: services.clock.now() });
  });
  return {};
};
