import { authorizeRetireGrant } from '../access/authorize';
import { grantIdOfToken, tokenNamesGrant } from '../access/grants';
import { KmsError } from '../errors';
import type { GrantRecord } from '../store/grant-record';
import type { OperationHandler } from './context';
import { stopIfDryRun } from './shared/checks';
import { checkGrantId, grantNotFound, isGrantOn } from './shared/grant-entries';
import { findKey, requestConditionValues } from './shared/key-resolution';

/**
 * RetireGrant by GrantToken, or by KeyId (the key ARN) and GrantId. AWS answers nothing; the
 * result names the grant and its key for the audit trail only (CloudTrail's RetireGrant record
 * has the grant id in additionalEventData and the key in resources, even when the caller named
 * only a token): the wire encoders send only the members the model defines, none here.
 */
export const retireGrant: OperationHandler<'RetireGrant'> = async (input, ctx, services) => {
  let grant: GrantRecord | undefined;
  if (input.GrantToken !== undefined) {
    const grantId = grantIdOfToken(input.GrantToken);
    grant = await services.store.getGrant(grantId);
    // Grants are regional, as their keys: a token is answered only in its grant's region.
    if (!grant || grant.region !== ctx.scope.region || !tokenNamesGrant(input.GrantToken, grant)) {
      throw new KmsError('InvalidGrantTokenException', 'The grant token is not valid.');
    }
  } else {
    if (input.KeyId === undefined || input.GrantId === undefined) {
      throw new KmsError('ValidationException', 'Either GrantToken, or both KeyId and GrantId, must be specified.');
    }
    checkGrantId(input.GrantId);
    const key = await findKey(services, ctx, input.KeyId, false);
    grant = await services.store.getGrant(input.GrantId);
    if (!grant || !isGrantOn(grant, key)) throw grantNotFound(input.GrantId);
  }
  const grantId = grant.grantId;
  const key = await services.store.getKey(grant);
  if (!key) throw grantNotFound(grantId);
  const values = services.access?.enforce ? requestConditionValues(services, ctx, { key, request: {} }) : new Map<string, string[]>();
  authorizeRetireGrant(services.access, ctx.caller, grant, key.arn, values);
  stopIfDryRun(input.DryRun);
  await services.store.transact(async (tx) => {
    if (!(await tx.getGrant(grantId))) throw grantNotFound(grantId);
    tx.deleteGrant(grantId);
  });
  return { KeyId: key.arn, GrantId: grantId };
};
