import type { KeyMetadata } from '../../model/generated/types';
import type { KeyRecord } from '../../store/records';
import { algorithmsOf } from './algorithms';

/** The KeyMetadata AWS returns for a key, field for field (see recorded-aws-responses.md §1). */
export function keyMetadataOf(key: KeyRecord): KeyMetadata {
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
  const current = key.materials.find((m) => m.version === key.currentVersion);
  if (current?.imported?.importState === 'IMPORTED' && current.imported.validTo !== undefined) metadata.ValidTo = new Date(current.imported.validTo);
  metadata.Origin = key.origin;
  if (current?.imported?.importState === 'IMPORTED') metadata.ExpirationModel = current.imported.expirationModel;
  metadata.KeyManager = 'CUSTOMER';
  metadata.CustomerMasterKeySpec = key.keySpec as KeyMetadata['CustomerMasterKeySpec'];
  metadata.KeySpec = key.keySpec;
  Object.assign(metadata, algorithmsOf(key.keySpec, key.keyUsage));
  metadata.MultiRegion = false;
  if (key.keySpec === 'SYMMETRIC_DEFAULT' && current) metadata.CurrentKeyMaterialId = current.materialId;
  return metadata;
}
