import { KmsError } from '../errors';
import { aliasArn } from '../store/records';
import type { OperationHandler } from './context';
import { aliasTargetIn, authoriseAliasTarget, authoriseTargetIn, loadAliasTarget } from './shared/alias-names';

export const updateAlias: OperationHandler<'UpdateAlias'> = async (input, ctx, services) => {
  // AWS: kms:UpdateAlias on the alias (IAM policy), the current and the new target key (key policies).
  const target = await loadAliasTarget(services, ctx, 'UpdateAlias', input.AliasName, input.TargetKeyId);
  const authorised = await authoriseAliasTarget(services, ctx, input.AliasName, 'UpdateAlias');
  await services.store.transact(async (tx) => {
    const alias = await tx.getAlias(ctx.scope, input.AliasName);
    await authoriseTargetIn(tx, services, ctx, alias, authorised, 'UpdateAlias');
    if (!alias) throw new KmsError('NotFoundException', `Alias ${aliasArn(ctx.scope, input.AliasName)} is not found.`);
    const key = await aliasTargetIn(tx, target);
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
