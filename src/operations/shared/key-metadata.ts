import type { KeyMetadata, MultiRegionConfiguration } from '../../model/generated/types';
import { isReplica, type KeyRecord } from '../../store/records';
import { algorithmsOf } from './algorithms';

/**
 * The KeyMetadata AWS returns for a key, field for field (see recorded-aws-responses.md §1).
 * `regions`: every region's record of a multi-Region key (store.listKeyRegions), for its
 * MultiRegionConfiguration.
 */
export function keyMetadataOf(key: KeyRecord, regions: readonly KeyRecord[] = [key]): KeyMetadata {
  const metadata: KeyMetadata = {
    AWSAccountId: key.accountId,
    KeyId: key.keyId,
    Arn: key.arn,
    CreationDate: new Date(key.createdAt),
    Enabled: key.keyState === 'Enabled',
    Description: key.description,
    KeyUsage: key.keyUsage,
    KeyState: key.keyState,
  };
  if (key.deletionDate !== undefined) metadata.DeletionDate = new Date(key.deletionDate);
  // A primary waiting for its replicas to go shows the waiting period instead of a date.
  if (key.keyState === 'PendingReplicaDeletion' && key.pendingWindowInDays !== undefined) metadata.PendingDeletionWindowInDays = key.pendingWindowInDays;
  const current = key.materials.find((m) => m.version === key.currentVersion);
  if (current?.imported?.importState === 'IMPORTED' && current.imported.validTo !== undefined) metadata.ValidTo = new Date(current.imported.validTo);
  metadata.Origin = key.origin;
  if (current?.imported?.importState === 'IMPORTED') metadata.ExpirationModel = current.imported.expirationModel;
  metadata.KeyManager = 'CUSTOMER';
  metadata.CustomerMasterKeySpec = key.keySpec as KeyMetadata['CustomerMasterKeySpec'];
  metadata.KeySpec = key.keySpec;
  Object.assign(metadata, algorithmsOf(key.keySpec, key.keyUsage));
  metadata.MultiRegion = key.primaryRegion !== undefined;
  if (key.primaryRegion !== undefined) metadata.MultiRegionConfiguration = multiRegionConfigurationOf(key, regions);
  if (key.keySpec === 'SYMMETRIC_DEFAULT' && current) metadata.CurrentKeyMaterialId = current.materialId;
  return metadata;
}

function multiRegionConfigurationOf(key: KeyRecord, regions: readonly KeyRecord[]): MultiRegionConfiguration {
  const all = regions.some((r) => r.region === key.region) ? regions : [key, ...regions];
  const primary = all.find((r) => !isReplica(r));
  return {
    MultiRegionKeyType: isReplica(key) ? 'REPLICA' : 'PRIMARY',
    PrimaryKey: { Arn: primary?.arn ?? key.arn.replace(`:kms:${key.region}:`, `:kms:${key.primaryRegion}:`), Region: key.primaryRegion },
    ReplicaKeys: all.filter((r) => isReplica(r)).map((r) => ({ Arn: r.arn, Region: r.region })),
  };
}
