import { KmsError } from '../../errors';
import type { AliasRecord, KeyRecord } from '../../store/records';
import type { StoreTransaction } from '../../store/metadata-store';
import type { RequestContext, Services } from '../context';
import { checkAliasAction, checkKeyFor, loadKeyFor } from './key-resolution';
import { requireKeyState } from './key-states';

/** AWS's rules for alias names beyond the model's pattern and length. */
export function checkAliasName(aliasName: string): void {
  if (!aliasName.startsWith('alias/')) {
    throw new KmsError(
      'ValidationException',
      'Alias must start with the prefix "alias/". Please see https://docs.aws.amazon.com/kms/latest/developerguide/kms-alias.html',
    );
  }
  if (aliasName.startsWith('alias/aws/')) {
    throw new KmsError('InvalidAliasNameException', 'Alias names beginning with alias/aws/ are reserved for AWS managed keys.');
  }
  if (aliasName === 'alias/') throw new KmsError('InvalidAliasNameException', 'Alias name must not be empty after the prefix "alias/".');
  // The model's pattern admits ':'; the service does not.
  if (!/^alias\/[a-zA-Z0-9/_-]+$/.test(aliasName)) throw new KmsError('ValidationException', `${aliasName} contains invalid characters for an alias`);
}

/** CreateAlias / UpdateAlias: TargetKeyId must name a key, never an alias (AWS's ValidationException). */
export function checkAliasTarget(targetKeyId: string): void {
  if (targetKeyId.startsWith('alias/') || /^arn:aws[a-z-]*:kms:[^:]*:[^:]*:alias\//.test(targetKeyId)) {
    throw new KmsError('ValidationException', 'Aliases must refer to keys. Not aliases');
  }
}

/**
 * What CreateAlias and UpdateAlias check alike before their transaction: the alias name and
 * the target reference are well formed, the caller may take `operation`'s action on the alias
 * (IAM policy), and on the target key (key policy; AWS: any key state here). Returns the target.
 */
export async function loadAliasTarget(services: Services, ctx: RequestContext, operation: 'CreateAlias' | 'UpdateAlias', aliasName: string, targetKeyId: string): Promise<KeyRecord> {
  checkAliasName(aliasName);
  checkAliasTarget(targetKeyId);
  checkAliasAction(services, ctx, `kms:${operation}`, aliasName);
  return loadKeyFor(services, ctx, targetKeyId, { operation, member: 'TargetKeyId', states: 'any' });
}

/** Inside CreateAlias's or UpdateAlias's transaction: the target key as it reads it now, still there and in a state an alias may be pointed at. */
export async function aliasTargetIn(tx: StoreTransaction, target: KeyRecord): Promise<KeyRecord> {
  const key = await tx.getKey(target);
  if (!key) throw new KmsError('NotFoundException', `Key '${target.arn}' does not exist`);
  requireKeyState(key, 'manage');
  return key;
}

/**
 * UpdateAlias / DeleteAlias act on the alias's current key, so the caller must be allowed on
 * that key (key policy). Authorises against the target as read now and returns it
 * (undefined: no such alias) for `authoriseTargetIn` inside the transaction.
 */
export async function authoriseAliasTarget(services: Services, ctx: RequestContext, aliasName: string, operation: AliasChange): Promise<string | undefined> {
  const alias = await services.store.getAlias(ctx.scope, aliasName);
  if (alias) await loadKeyFor(services, ctx, alias.targetKeyId, { operation, member: 'TargetKeyId', states: 'any' });
  return alias?.targetKeyId;
}

/**
 * Inside the transaction: if a concurrent UpdateAlias moved the alias after the caller was
 * authorised, the caller is authorised again against the key it targets now, so a caller
 * allowed only on key A never deletes or repoints an alias that meanwhile targets key B.
 */
export async function authoriseTargetIn(
  tx: StoreTransaction,
  services: Services,
  ctx: RequestContext,
  alias: AliasRecord | undefined,
  authorised: string | undefined,
  operation: AliasChange,
): Promise<void> {
  if (!alias || alias.targetKeyId === authorised) return;
  const target = await tx.getKey({ keyId: alias.targetKeyId, region: alias.region });
  if (target) await checkKeyFor(services, ctx, target, { operation, member: 'TargetKeyId', states: 'any' });
}

type AliasChange = 'UpdateAlias' | 'DeleteAlias';
