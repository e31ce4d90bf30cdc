import { authorizeRetireGrant } from '../access/authorize';
import { grantIdOfToken } from '../access/grants';
import { KmsError } from '../errors';
import type { GrantRecord } from '../store/grant-record';
import { keyArn } from '../store/records';
import type { OperationHandler } from './context';
import { stopIfDryRun } from './shared/checks';
import { checkGrantId, grantNotFound } from './shared/grant-entries';
import { findKey } from './shared/key-resolution';

/** RetireGrant by GrantToken, or by KeyId (the key ARN) and GrantId. */
export const retireGrant: OperationHandler<'RetireGrant'> = async (input, ctx, services) => {
  let grant: GrantRecord | undefined;
  if (input.GrantToken !== undefined) {
    const grantId = grantIdOfToken(input.GrantToken);
    grant = await services.store.getGrant(grantId);
    if (!grant || grant.grantToken !== input.GrantToken) throw new KmsError('InvalidGrantTokenException', 'The grant token is not valid.');
  } else {
    if (input.KeyId === undefined || input.GrantId === undefined) {
      throw new KmsError('ValidationException', 'Either GrantToken, or both KeyId and GrantId, must be specified.');
    }
    checkGrantId(input.GrantId);
    const key = await findKey(services, ctx, input.KeyId, false);
    grant = await services.store.getGrant(input.GrantId);
    if (!grant || grant.keyId !== key.keyId) throw grantNotFound(input.GrantId);
  }
  authorizeRetireGrant(services.access, ctx.caller, grant, keyArn({ region: grant.region, accountId: grant.accountId }, grant.keyId));
  stopIfDryRun(input.DryRun);
  const grantId = grant.grantId;
  await services.store.transact(async (tx) => {
    if (!(await tx.getGrant(grantId))) throw grantNotFound(grantId);
    tx.deleteGrant(grantId);
  });
  return {};
};
