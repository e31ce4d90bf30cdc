import type { OperationName } from '../model/generated/types';
import { cancelKeyDeletion } from './cancel-key-deletion';
import type { OperationHandler } from './context';
import { createAlias } from './create-alias';
import { createKey } from './create-key';
import { decrypt } from './decrypt';
import { deleteAlias } from './delete-alias';
import { describeKey } from './describe-key';
import { disableKey } from './disable-key';
import { enableKey } from './enable-key';
import { encrypt } from './encrypt';
import { verifyMac } from './verify-mac';
import { verify } from './verify';
import { sign } from './sign';
import { getPublicKey } from './get-public-key';
import { generateMac } from './generate-mac';
import { generateDataKeyPairWithoutPlaintext } from './generate-data-key-pair-without-plaintext';
import { generateDataKeyPair } from './generate-data-key-pair';
import { deriveSharedSecret } from './derive-shared-secret';
import { generateDataKey } from './generate-data-key';
import { generateDataKeyWithoutPlaintext } from './generate-data-key-without-plaintext';
import { generateRandom } from './generate-random';
import { listAliases } from './list-aliases';
import { listKeys } from './list-keys';
import { reEncrypt } from './re-encrypt';
import { scheduleKeyDeletion } from './schedule-key-deletion';
import { updateAlias } from './update-alias';
import { updateKeyDescription } from './update-key-description';
import { createGrant } from './create-grant';
import { getKeyPolicy } from './get-key-policy';
import { listGrants } from './list-grants';
import { listKeyPolicies } from './list-key-policies';
import { listRetirableGrants } from './list-retirable-grants';
import { putKeyPolicy } from './put-key-policy';
import { retireGrant } from './retire-grant';
import { revokeGrant } from './revoke-grant';
import { deleteImportedKeyMaterial } from './delete-imported-key-material';
import { disableKeyRotation } from './disable-key-rotation';
import { enableKeyRotation } from './enable-key-rotation';
import { getKeyLastUsage } from './get-key-last-usage';
import { getKeyRotationStatus } from './get-key-rotation-status';
import { getParametersForImport } from './get-parameters-for-import';
import { importKeyMaterial } from './import-key-material';
import { listKeyRotations } from './list-key-rotations';
import { listResourceTags } from './list-resource-tags';
import { replicateKey } from './replicate-key';
import { rotateKeyOnDemand } from './rotate-key-on-demand';
import { tagResource } from './tag-resource';
import { untagResource } from './untag-resource';
import { updatePrimaryRegion } from './update-primary-region';
import { trackingUsage } from './shared/last-usage';
import { connectCustomKeyStore } from './connect-custom-key-store';
import { createCustomKeyStore } from './create-custom-key-store';
import { deleteCustomKeyStore } from './delete-custom-key-store';
import { describeCustomKeyStores } from './describe-custom-key-stores';
import { disconnectCustomKeyStore } from './disconnect-custom-key-store';
import { updateCustomKeyStore } from './update-custom-key-store';
import { retryingStaleReads } from './shared/stale-read';

export type { OperationHandler, RequestContext, Services } from './context';

/**
 * Every KMS operation p11kms implements, by its AWS name. Wire dialects dispatch here;
 * operations know nothing of HTTP, JSON or signatures.
 */
export const OPERATIONS: { [Op in OperationName]?: OperationHandler<Op> } = {
  CancelKeyDeletion: cancelKeyDeletion,
  ConnectCustomKeyStore: connectCustomKeyStore,
  CreateCustomKeyStore: createCustomKeyStore,
  DeleteCustomKeyStore: deleteCustomKeyStore,
  DescribeCustomKeyStores: describeCustomKeyStores,
  DisconnectCustomKeyStore: disconnectCustomKeyStore,
  UpdateCustomKeyStore: updateCustomKeyStore,
  CreateAlias: createAlias,
  CreateKey: createKey,
  CreateGrant: createGrant,
  GetKeyPolicy: getKeyPolicy,
  ListGrants: listGrants,
  ListKeyPolicies: listKeyPolicies,
  ListRetirableGrants: listRetirableGrants,
  PutKeyPolicy: putKeyPolicy,
  RetireGrant: retireGrant,
  RevokeGrant: revokeGrant,
  DeleteImportedKeyMaterial: deleteImportedKeyMaterial,
  DisableKeyRotation: disableKeyRotation,
  EnableKeyRotation: enableKeyRotation,
  GetKeyLastUsage: getKeyLastUsage,
  GetKeyRotationStatus: getKeyRotationStatus,
  GetParametersForImport: getParametersForImport,
  ImportKeyMaterial: importKeyMaterial,
  ListKeyRotations: listKeyRotations,
  ListResourceTags: listResourceTags,
  ReplicateKey: replicateKey,
  RotateKeyOnDemand: rotateKeyOnDemand,
  TagResource: tagResource,
  UntagResource: untagResource,
  UpdatePrimaryRegion: updatePrimaryRegion,
  Decrypt: trackingUsage('Decrypt', retryingStaleReads(decrypt)),
  DeriveSharedSecret: trackingUsage('DeriveSharedSecret', retryingStaleReads(deriveSharedSecret)),
  DeleteAlias: deleteAlias,
  DescribeKey: describeKey,
  DisableKey: disableKey,
  EnableKey: enableKey,
  Encrypt: trackingUsage('Encrypt', retryingStaleReads(encrypt)),
  GenerateDataKey: trackingUsage('GenerateDataKey', retryingStaleReads(generateDataKey)),
  GenerateDataKeyPair: trackingUsage('GenerateDataKeyPair', retryingStaleReads(generateDataKeyPair)),
  GenerateDataKeyPairWithoutPlaintext: trackingUsage('GenerateDataKeyPairWithoutPlaintext', retryingStaleReads(generateDataKeyPairWithoutPlaintext)),
  GenerateDataKeyWithoutPlaintext: trackingUsage('GenerateDataKeyWithoutPlaintext', retryingStaleReads(generateDataKeyWithoutPlaintext)),
  GenerateMac: trackingUsage('GenerateMac', retryingStaleReads(generateMac)),
  GenerateRandom: generateRandom,
  GetPublicKey: retryingStaleReads(getPublicKey),
  ListAliases: listAliases,
  ListKeys: listKeys,
  ReEncrypt: trackingUsage('ReEncrypt', retryingStaleReads(reEncrypt)),
  ScheduleKeyDeletion: scheduleKeyDeletion,
  Sign: trackingUsage('Sign', retryingStaleReads(sign)),
  UpdateAlias: updateAlias,
  UpdateKeyDescription: updateKeyDescription,
  Verify: trackingUsage('Verify', retryingStaleReads(verify)),
  VerifyMac: trackingUsage('VerifyMac', retryingStaleReads(verifyMac)),
};
