import { cancelKeyDeletion } from './cancel-key-deletion';
import { createDatakey, createDatakeyWithoutPlaintext } from './create-datakey';
import { createKey } from './create-key';
import { decryptData } from './decrypt-data';
import { decryptDatakey } from './decrypt-datakey';
import { describeKey } from './describe-key';
import { disableKey, enableKey } from './enable-disable-key';
import { encryptData } from './encrypt-data';
import { encryptDatakey } from './encrypt-datakey';
import { genRandom } from './gen-random';
import { getPublicKey } from './get-publickey';
import { createGrant, listGrants, listRetirableGrants, retireGrant, revokeGrant } from './grants';
import { deleteImportedKeyMaterial, getParametersForImport, importKeyMaterial } from './key-import';
import { disableKeyRotation, enableKeyRotation, getKeyRotationStatus, updateKeyRotationInterval } from './key-rotation';
import { batchCreateKmsTags, createKmsTag, deleteKmsTag, showKmsTags } from './kms-tags';
import { listKeys } from './list-keys';
import { scheduleKeyDeletion } from './schedule-key-deletion';
import type { Action } from './shared';
import { sign, verify } from './sign-verify';
import { updateKeyAlias } from './update-key-alias';
import { updateKeyDescription } from './update-key-description';

export { type Action, type Body, type TracedCall, tracedCalls } from './shared';

/**
 * Field mapping of the Huawei Cloud / Open Telekom Cloud KMS API (`POST /v1.0/{project_id}/kms/<action>`)
 * onto the dialect-independent operations. Every action validates Huawei's snake_case input
 * with Huawei's error codes, calls OPERATIONS (which own key resolution, state checks,
 * authorisation and cryptography) and renders Huawei's output. Field names, types, limits and
 * defaults are from the OTC "KMS API Reference" (kms_02_0012 create-key, kms_02_0013 enable-key,
 * kms_02_0014 disable-key, kms_02_0015 schedule-key-deletion, kms_02_0016 cancel-key-deletion,
 * kms_02_0017 list-keys, kms_02_0018 describe-key, kms_02_0020 create-datakey, kms_02_0021
 * create-datakey-without-plaintext, kms_02_0022 encrypt-datakey, kms_02_0023 decrypt-datakey,
 * kms_02_0019 gen-random, kms_02_0026 update-key-alias, kms_02_0027 update-key-description,
 * kms_02_0033 encrypt-data, kms_02_0034 decrypt-data) and, where Huawei Cloud's current reference
 * widens a limit the OTC one fixes at 512 bits / 64 bytes ("Create a DEK", "Generate a random
 * number": 8–8192 bits in multiples of 8), from Huawei Cloud's.
 */

/** Every action this dialect serves; anything else under /v1.0/{project_id}/kms/ is not routed. */
export const ACTIONS: Record<string, Action> = {
  'create-key': createKey,
  sign,
  verify,
  'get-publickey': getPublicKey,
  'describe-key': describeKey,
  'list-keys': listKeys,
  'enable-key': enableKey,
  'disable-key': disableKey,
  'schedule-key-deletion': scheduleKeyDeletion,
  'cancel-key-deletion': cancelKeyDeletion,
  'update-key-alias': updateKeyAlias,
  'update-key-description': updateKeyDescription,
  'encrypt-data': encryptData,
  'decrypt-data': decryptData,
  'create-datakey': createDatakey,
  'create-datakey-without-plaintext': createDatakeyWithoutPlaintext,
  'encrypt-datakey': encryptDatakey,
  'decrypt-datakey': decryptDatakey,
  'gen-random': genRandom,
  'enable-key-rotation': enableKeyRotation,
  'disable-key-rotation': disableKeyRotation,
  'update-key-rotation-interval': updateKeyRotationInterval,
  'get-key-rotation-status': getKeyRotationStatus,
  'create-grant': createGrant,
  'list-grants': listGrants,
  'list-retirable-grants': listRetirableGrants,
  'revoke-grant': revokeGrant,
  'retire-grant': retireGrant,
  'get-parameters-for-import': getParametersForImport,
  'import-key-material': importKeyMaterial,
  'delete-imported-key-material': deleteImportedKeyMaterial,
};

/** The tag APIs, routed by path and method rather than by action name (../router.ts ROUTES). */
export const TAG_ACTIONS = {
  'create-kms-tag': createKmsTag,
  'batch-create-kms-tags': batchCreateKmsTags,
  'delete-kms-tag': deleteKmsTag,
  'show-kms-tags': showKmsTags,
} satisfies Record<string, Action>;
