import { KmsError } from '../errors';
import { isMultiRegion, isReplica, keyArn, type KeyRecord, withSharedFields } from '../store/records';
import type { OperationHandler, RequestContext } from './context';
import { defaultKeyPolicy } from './create-key';
import { keyMetadataOf } from './shared/key-metadata';
import { checkKeyPolicy } from './shared/key-policy';
import { checkAccountAction, loadKeyFor, notMultiRegionPrimary, requireEnabled } from './shared/key-resolution';
import { validateTags } from './shared/tags';

/**
 * Makes a replica of a multi-Region primary key in another region of the same account. The
 * replica is a second key record under the same key id whose material records are the
 * primary's: the same token objects, so nothing is generated, copied or wrapped and the
 * material never leaves the token. One store transaction decides, so of several requests
 * replicating one key into one region exactly one succeeds.
 *
 * AWS answers with the replica in state Creating; here creation is complete when the call
 * returns (there is nothing to copy), so the stored replica is Enabled and DescribeKey
 * shows it Enabled at once.
 */
export const replicateKey: OperationHandler<'ReplicateKey'> = async (input, ctx, services) => {
  // Rights in the primary's region: kms:ReplicateKey on the primary (its key policy).
  const primary = await loadKeyFor(services, ctx, input.KeyId, { operation: 'ReplicateKey', states: 'any', conditions: { replicaRegion: input.ReplicaRegion } });
  checkReplicable(primary);
  const replicaScope = { region: input.ReplicaRegion, accountId: primary.accountId };
  const replicaArn = keyArn(replicaScope, primary.keyId);
  if (input.ReplicaRegion === primary.region) {
    throw new KmsError('AlreadyExistsException', `Key '${replicaArn}' already exists: it is the primary key. A replica must be in another region.`);
  }
  // Rights in the replica's region, as a CreateKey there: kms:CreateKey (and kms:TagResource
  // for tags) in the caller's identity policies, and the replica's policy must pass the
  // lockout safety check.
  const replicaCtx: RequestContext = { ...ctx, scope: replicaScope };
  const tags = validateTags(input.Tags);
  const policy = input.Policy ?? defaultKeyPolicy(primary.accountId);
  const bypass = input.BypassPolicyLockoutSafetyCheck;
  const creation = { keySpec: primary.keySpec, keyUsage: primary.keyUsage, keyOrigin: primary.origin, multiRegion: true, requestTags: tags, bypassPolicyLockoutSafetyCheck: bypass };
  checkAccountAction(services, replicaCtx, 'kms:CreateKey', creation);
  if (tags.length > 0) checkAccountAction(services, replicaCtx, 'kms:TagResource', { requestTags: tags });

  const draft: KeyRecord = withSharedFields(
    {
      keyId: primary.keyId,
      region: input.ReplicaRegion,
      accountId: primary.accountId,
      arn: replicaArn,
      createdAt: services.clock.now(),
      description: input.Description ?? '',
      keySpec: primary.keySpec,
      keyUsage: primary.keyUsage,
      origin: primary.origin,
      keyState: 'Enabled',
      materials: primary.materials,
      currentVersion: primary.currentVersion,
      tags,
      policy,
    },
    primary,
  );
  // The lockout safety check applies to a policy the caller provides (AWS's rule).
  checkKeyPolicy(services, replicaCtx, policy, draft, bypass || input.Policy === undefined);

  const { replica, regions } = await services.store.transact(async (tx) => {
    const current = await tx.getKey(primary);
    if (!current) throw new KmsError('NotFoundException', `Key '${primary.arn}' does not exist`);
    checkReplicable(current);
    if (current.primaryRegion !== primary.primaryRegion) throw notMultiRegionPrimary(current);
    const existing = await tx.getKey({ keyId: primary.keyId, region: input.ReplicaRegion });
    if (existing) throw new KmsError('AlreadyExistsException', `Key '${replicaArn}' already exists`);
    // The shared fields are taken from the freshest primary (a rotation may have just committed).
    const record = withSharedFields(draft, current);
    tx.putKey(record);
    return { replica: record, regions: await tx.listKeyRegions(primary.keyId) };
  });
  return {
    ReplicaKeyMetadata: keyMetadataOf({ ...replica, keyState: 'Creating' }, regions),
    ReplicaPolicy: replica.policy,
    ReplicaTags: replica.tags.map((t) => ({ TagKey: t.TagKey, TagValue: t.TagValue })),
  };
};

function checkReplicable(key: KeyRecord): void {
  if (!isMultiRegion(key) || isReplica(key)) throw notMultiRegionPrimary(key);
  requireEnabled(key);
}
