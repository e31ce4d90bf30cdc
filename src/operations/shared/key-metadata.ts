import type { KeyMetadata, KeyState, MultiRegionConfiguration } from '../../model/generated/types';
import { type CustomKeyStoreRecord, isReplica, type KeyRecord } from '../../store/records';
import type { Services } from '../context';
import { algorithmsOf } from './algorithms';
import { catchUpWithKeyStore, effectiveKeyState } from './custom-key-stores';
import { importedExpiryOf } from './import-state';

/**
 * The KeyMetadata AWS returns for a key, field for field (see recorded-aws-responses.md §1).
 * `regions`: every region's record of a multi-Region key (store.listKeyRegions), for its
 * MultiRegionConfiguration. `custom`: the key's custom key store and its state as its
 * connection makes it (describedKey).
 */
export function keyMetadataOf(key: KeyRecord, regions: readonly KeyRecord[] = [key], custom?: { state: KeyState; store: CustomKeyStoreRecord | undefined }): KeyMetadata {
  const keyState = custom?.state ?? key.keyState;
  const metadata: KeyMetadata = {
    AWSAccountId: key.accountId,
    KeyId: key.keyId,
    Arn: key.arn,
    CreationDate: new Date(key.createdAt),
    Enabled: keyState === 'Enabled',
    Description: key.description,
    KeyUsage: key.keyUsage,
    KeyState: keyState,
  };
  if (key.deletionDate !== undefined) metadata.DeletionDate = new Date(key.deletionDate);
  // A primary waiting for its replicas to go shows the waiting period instead of a date.
  if (key.keyState === 'PendingReplicaDeletion' && key.pendingWindowInDays !== undefined) metadata.PendingDeletionWindowInDays = key.pendingWindowInDays;
  const current = key.materials.find((m) => m.version === key.currentVersion);
  const expiry = importedExpiryOf(key);
  if (expiry.validTo !== undefined) metadata.ValidTo = new Date(expiry.validTo);
  metadata.Origin = key.origin;
  if (expiry.expirationModel) metadata.ExpirationModel = expiry.expirationModel;
  if (key.customKeyStoreId) {
    metadata.CustomKeyStoreId = key.customKeyStoreId;
    if (custom?.store?.cloudHsmClusterId) metadata.CloudHsmClusterId = custom.store.cloudHsmClusterId;
  }
  metadata.KeyManager = 'CUSTOMER';
  metadata.CustomerMasterKeySpec = key.keySpec as KeyMetadata['CustomerMasterKeySpec'];
  metadata.KeySpec = key.keySpec;
  Object.assign(metadata, algorithmsOf(key.keySpec, key.keyUsage));
  metadata.MultiRegion = key.primaryRegion !== undefined;
  if (key.primaryRegion !== undefined) metadata.MultiRegionConfiguration = multiRegionConfigurationOf(key, regions);
  // Only keys that can rotate have one: AWS_KMS and EXTERNAL origin, not keys in a custom key store (model, KeyMetadata).
  if (key.keySpec === 'SYMMETRIC_DEFAULT' && current && (key.origin === 'AWS_KMS' || key.origin === 'EXTERNAL')) metadata.CurrentKeyMaterialId = current.materialId;
  if (key.xksKeyId) metadata.XksKeyConfiguration = { Id: key.xksKeyId };
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

/** keyMetadataOf with what only the service knows: the key's custom key store and its connection. */
export async function describedKey(services: Services, key: KeyRecord, regions: readonly KeyRecord[] = [key]): Promise<KeyMetadata> {
  if (!key.customKeyStoreId) return keyMetadataOf(key, regions);
  const store = await services.store.getCustomKeyStore(key.customKeyStoreId);
  await catchUpWithKeyStore(services, key, store);
  return keyMetadataOf(key, regions, { state: effectiveKeyState(services, key), store });
}
