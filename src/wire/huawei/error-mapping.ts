import { type KmsErrorName, KmsError } from '../../errors';
import type { KeyState } from '../../model/generated/types';
import { ownValue } from '../own-properties';
import { MESSAGES } from './errors';
import { huaweiOperationsOf } from './grant-operations';
import { huaweiSpecOf } from './key-specs';

/**
 * How a failure of the shared operations (a KmsError, in AWS's terms) becomes this dialect's
 * error: the code by error name, refined by action and by the key's state, and a message in
 * Huawei's terms — its member names (grantee_principal, expiration_time, signing_algorithm …),
 * its key specs (AES_256, EC_P256) and key ids, never AWS ARNs, AWS member names (GranteePrincipal,
 * validTo, KeySpec) or AWS key specs (SYMMETRIC_DEFAULT, ECC_NIST_P256). The one place this is
 * decided; the actions raise their own errors in Huawei's terms already (./errors.ts invalid()).
 */

export interface Mapped {
  status: number;
  code: string;
  /**
   * Fixed message; when absent the KmsError's own message is sent (it never holds secrets),
   * reworded by REWORDED or, failing that, huaweiWording().
   */
  message?: string;
}

/** KmsError name → Huawei code. One table for the whole dialect. */
const BY_NAME: Partial<Record<KmsErrorName, Mapped>> = {
  NotFoundException: { status: 404, code: 'KMS.0207', message: 'The key does not exist.' },
  DisabledException: { status: 400, code: 'KMS.0209', message: 'The key has been disabled.' },
  // By the key's state: see BY_KEY_STATE.
  KMSInvalidStateException: { status: 400, code: 'KMS.0308', message: "Invalid parameter: the key's state does not allow this operation." },
  KeyUnavailableException: { status: 500, code: 'KMS.0102', message: 'Abnormal KMS I/O.' },
  InvalidCiphertextException: { status: 400, code: 'KMS.2201', message: MESSAGES['KMS.2201'] },
  IncorrectKeyException: { status: 400, code: 'KMS.2201', message: MESSAGES['KMS.2201'] },
  InvalidKeyUsageException: { status: 400, code: 'KMS.0308', message: 'Invalid parameter: the key usage does not allow this operation.' },
  AlreadyExistsException: { status: 400, code: 'KMS.1104', message: 'Duplicate key aliases.' },
  InvalidAliasNameException: { status: 400, code: 'KMS.1101', message: MESSAGES['KMS.1101'] },
  InvalidMarkerException: { status: 400, code: 'KMS.1602', message: MESSAGES['KMS.1602'] },
  LimitExceededException: { status: 400, code: 'KMS.1105', message: 'Too many keys.' },
  ValidationException: { status: 400, code: 'KMS.0308' },
  UnsupportedOperationException: { status: 400, code: 'KMS.0308' },
  AccessDeniedException: { status: 403, code: 'KMS.0306', message: 'The user has no permission to access the key.' },
  TagException: { status: 400, code: 'KMS.0308' },
  InvalidGrantIdException: { status: 400, code: 'KMS.0308' },
  InvalidGrantTokenException: { status: 400, code: 'KMS.0308' },
  InvalidImportTokenException: { status: 400, code: 'KMS.0308' },
  ExpiredImportTokenException: { status: 400, code: 'KMS.0308' },
  IncorrectKeyMaterialException: { status: 400, code: 'KMS.0308' },
  // Authentication (raised by ./auth.ts with this dialect's wording). No token at all: 403, as
  // the Huawei error-code table's status for KMS.0301 says.
  MissingAuthenticationTokenException: { status: 403, code: 'KMS.0301' },
  UnrecognizedClientException: { status: 401, code: 'KMS.0302' },
  InvalidSignatureException: { status: 401, code: 'KMS.0302' },
  IncompleteSignatureException: { status: 401, code: 'KMS.0302' },
  // Request quotas and load shedding: Huawei's API gateway answers flow control with 429 APIGW.0308.
  ThrottlingException: { status: 429, code: 'APIGW.0308', message: 'The throttling threshold has been reached.' },
  KMSInternalException: { status: 500, code: 'KMS.0101', message: 'KMS error.' },
  DependencyTimeoutException: { status: 500, code: 'KMS.0102', message: 'Abnormal KMS I/O.' },
};

/**
 * KMSInvalidStateException by the state of the key it is about (KmsError.keyState), so that a
 * client is told the state its key is really in: OTC's KMS.0209 / KMS.0210 for disabled and
 * pending-deletion keys. A key waiting for its material (key_state 5) has no code of its own
 * in OTC's or Huawei Cloud's table (KMS.0310 says the opposite, "not in Pending import state",
 * for import-key-material): it gets the generic KMS.0308, as the README says the dialect does
 * wherever the table has no specific code, with a message naming the state and the way out.
 * States without an entry (unavailable custom key store keys …) fall back to BY_NAME's
 * generic KMS.0308.
 */
const BY_KEY_STATE: Partial<Record<KeyState, Mapped>> = {
  Disabled: { status: 400, code: 'KMS.0209', message: 'The key has been disabled.' },
  PendingDeletion: { status: 400, code: 'KMS.0210', message: 'The key is in Scheduled deletion state and cannot be used.' },
  PendingReplicaDeletion: { status: 400, code: 'KMS.0210', message: 'The key is in Scheduled deletion state and cannot be used.' },
  PendingImport: {
    status: 400,
    code: 'KMS.0308',
    message: 'Invalid parameter: the key is waiting for its key material to be imported (key_state 5) and cannot be used until import-key-material succeeds.',
  },
};

/**
 * Per-action refinements of the table, where Huawei documents a more specific code for a
 * state error than BY_KEY_STATE's (OTC kms_02_8888: KMS.1201, KMS.1301, KMS.1402, KMS.1501).
 */
const BY_ACTION: Readonly<Record<string, Partial<Record<KmsErrorName, Mapped>>>> = {
  'enable-key': { KMSInvalidStateException: { status: 400, code: 'KMS.1201', message: 'The key is not disabled.' } },
  'disable-key': { KMSInvalidStateException: { status: 400, code: 'KMS.1301', message: 'The key is not enabled.' } },
  'schedule-key-deletion': {
    KMSInvalidStateException: { status: 400, code: 'KMS.1402', message: 'The key is already in Pending deletion state.' },
    ValidationException: { status: 400, code: 'KMS.1401', message: MESSAGES['KMS.1401'] },
  },
  'cancel-key-deletion': { KMSInvalidStateException: { status: 400, code: 'KMS.1501', message: 'The key is not in Pending deletion state.' } },
  'update-key-description': { ValidationException: { status: 400, code: 'KMS.1103', message: MESSAGES['KMS.1103'] } },
  'create-key': { ValidationException: { status: 400, code: 'KMS.0308' } },
  // The grants-per-key quota: the quota code, with the message saying which quota (not "Too many keys.").
  'create-grant': { LimitExceededException: { status: 400, code: 'KMS.1105' } },
  // Import (kms_02_8888 KMS.0309–KMS.0311): the AWS operations refuse keys of another origin
  // with UnsupportedOperationException and material they cannot unwrap with InvalidCiphertextException.
  'get-parameters-for-import': { UnsupportedOperationException: { status: 400, code: 'KMS.0309', message: MESSAGES['KMS.0309'] } },
  'import-key-material': {
    UnsupportedOperationException: { status: 400, code: 'KMS.0309', message: MESSAGES['KMS.0309'] },
    InvalidCiphertextException: { status: 400, code: 'KMS.0311', message: MESSAGES['KMS.0311'] },
    KMSInvalidStateException: { status: 400, code: 'KMS.0310', message: MESSAGES['KMS.0310'] },
    // kms_02_8888 KMS.2601 / KMS.2605: the import token.
    ExpiredImportTokenException: { status: 400, code: 'KMS.2601', message: MESSAGES['KMS.2601'] },
    InvalidImportTokenException: { status: 400, code: 'KMS.2605', message: MESSAGES['KMS.2605'] },
  },
  'delete-imported-key-material': {
    UnsupportedOperationException: { status: 400, code: 'KMS.0309', message: MESSAGES['KMS.0309'] },
    // No imported material to delete, or pending deletion (kms_02_8888 KMS.2701).
    KMSInvalidStateException: { status: 400, code: 'KMS.2701', message: MESSAGES['KMS.2701'] },
  },
  // A grant that does not exist (the message names the grant, or the key when that is missing).
  'revoke-grant': { NotFoundException: { status: 404, code: 'KMS.0207' } },
  'retire-grant': { NotFoundException: { status: 404, code: 'KMS.0207' } },
};

/**
 * Messages of the shared operations that name AWS terms, reworded for this dialect: the error
 * name, the actions it applies to (all when absent), the AWS message's pattern, and the Huawei
 * code and message made from the pattern's groups. A rule applies before BY_KEY_STATE and BY_NAME
 * (not before BY_ACTION, whose codes are Huawei's per-action ones).
 */
interface Rewording {
  name: KmsErrorName;
  actions?: readonly string[];
  pattern: RegExp;
  code: string;
  message: (m: RegExpExecArray, action: string | undefined) => string;
}

const SIGNING_ACTIONS = ['sign', 'verify'];

const REWORDED: readonly Rewording[] = [
  // GetPublicKey: "<key ARN> key spec SYMMETRIC_DEFAULT has no public key."
  {
    name: 'UnsupportedOperationException',
    pattern: /key spec (\S+) has no public key/,
    code: 'KMS.0308',
    message: (m) => `Invalid parameter: a key of key_spec ${huaweiSpecOf(m[1])} has no public key (RSA and EC keys have one).`,
  },
  // CreateGrant: "GranteePrincipal <principal ARN> is not a valid principal." (malformed: ValidationException; unknown: InvalidArnException)
  ...(['ValidationException', 'InvalidArnException'] as const).map((name) => ({
    name,
    pattern: /^(GranteePrincipal|RetiringPrincipal) (\S+) is not a valid principal/,
    code: 'KMS.0308',
    message: (m: RegExpExecArray) =>
      `Invalid parameter: ${m[1] === 'GranteePrincipal' ? 'grantee_principal' : 'retiring_principal'} ${principalName(m[2])} is not a user or account this service knows.`,
  })),
  // CreateGrant: "Grant operations Encrypt are not valid for <key ARN>, whose KeySpec is … and KeyUsage …."
  {
    name: 'ValidationException',
    pattern: /^Grant operations (.+) are not valid for \S+, whose KeySpec is (\S+) and KeyUsage (\S+)\./,
    code: 'KMS.0308',
    message: (m) => {
      const operations = [...new Set(m[1].split(', ').flatMap((o) => huaweiOperationsOf(o)))];
      return `Invalid parameter: operations ${operations.join(', ')} do not apply to a key of key_spec ${huaweiSpecOf(m[2])} and key_usage ${m[3]}.`;
    },
  },
  // ImportKeyMaterial: the material's length, the expiry (validTo is expiration_time here), the material itself.
  {
    name: 'ValidationException',
    pattern: /key material is not of a length key spec (\S+) accepts/,
    code: 'KMS.0308',
    message: (m) => `Invalid parameter: the key material is not of a length key_spec ${huaweiSpecOf(m[1])} takes${m[1] === 'SYMMETRIC_DEFAULT' ? ' (32 bytes)' : ''}.`,
  },
  {
    name: 'ValidationException',
    pattern: /validTo date must be no more than (\d+) days/,
    code: 'KMS.0308',
    message: (m) => `Invalid parameter: expiration_time must be at most ${m[1]} days from now.`,
  },
  { name: 'ValidationException', pattern: /validTo date must be in the future/, code: 'KMS.2602', message: () => MESSAGES['KMS.2602'] },
  {
    name: 'IncorrectKeyMaterialException',
    pattern: /already imported/,
    code: 'KMS.0308',
    message: () => 'Invalid parameter: this key material was already imported into the key.',
  },
  {
    name: 'IncorrectKeyMaterialException',
    pattern: /does not match/,
    code: 'KMS.0308',
    message: () => 'Invalid parameter: the key material does not match the key material imported into this key before.',
  },
  // Sign / Verify / Encrypt / Decrypt: "Algorithm ECDSA_SHA_384 is incompatible with key spec ECC_NIST_P256."
  // The key usage allows the operation; the algorithm does not fit the key.
  {
    name: 'InvalidKeyUsageException',
    pattern: /^Algorithm (\S+) is incompatible with key spec (\S+)\./,
    code: 'KMS.0308',
    message: (m, action) =>
      action !== undefined && SIGNING_ACTIONS.includes(action)
        ? `Invalid parameter: signing_algorithm ${m[1]} does not match the key (key_spec ${huaweiSpecOf(m[2])}).`
        : `Invalid parameter: encryption_algorithm ${m[1]} does not match the key (key_spec ${huaweiSpecOf(m[2])}): AES_256 keys take SYMMETRIC_DEFAULT (the default), RSA ENCRYPT_DECRYPT keys RSAES_OAEP_SHA_256 or RSAES_OAEP_SHA_1.`,
  },
  // GenerateDataKey(WithoutPlaintext) and friends: "<key ARN> key spec RSA_2048 is not valid for GenerateDataKey; use a symmetric encryption KMS key."
  {
    name: 'InvalidKeyUsageException',
    pattern: /key spec (\S+) is not valid for \w+; use a symmetric encryption KMS key/,
    code: 'KMS.0308',
    message: (m) => `Invalid parameter: data keys are made and encrypted under AES_256 keys only, not under a key of key_spec ${huaweiSpecOf(m[1])}.`,
  },
  // Encrypt with an RSA key: "Algorithm RSAES_OAEP_SHA_256 and key spec RSA_2048 cannot encrypt data larger than 190 bytes."
  {
    name: 'ValidationException',
    pattern: /^Algorithm (\S+) and key spec (\S+) cannot encrypt data larger than (\d+) bytes/,
    code: 'KMS.2101',
    message: (m) => `${MESSAGES['KMS.2101']} ${m[1]} with a key of key_spec ${huaweiSpecOf(m[2])} encrypts at most ${m[3]} bytes.`,
  },
];

/** A principal ARN as this dialect names principals: a domain (account) or a user. */
function principalName(arn: string): string {
  const root = /^arn:aws[\w-]*:iam::([^:]+):root$/.exec(arn);
  if (root) return `domain ${root[1]}`;
  const user = /^arn:aws[\w-]*:iam::\d{12}:user\/(.+)$/.exec(arn);
  if (user) return `user ${user[1]}`;
  return 'given';
}

/**
 * The last resort for a message no rule rewords: AWS ARNs become the key id, alias, domain or
 * user they name, and AWS member and key spec names become Huawei's. Messages the tables above
 * word themselves never get here.
 */
export function huaweiWording(message: string): string {
  return message
    .replace(/arn:aws[\w-]*:kms:[^:\s]*:\d{12}:key\/([0-9a-f-]{36})/g, 'key $1')
    .replace(/arn:aws[\w-]*:kms:[^:\s]*:\d{12}:alias\/([\w:/-]+)/g, 'alias $1')
    .replace(/arn:aws[\w-]*:iam::([^:\s]+):root/g, 'domain $1')
    .replace(/arn:aws[\w-]*:iam::\d{12}:user\/([\w+=,@-]+(?:\.[\w+=,@-]+)*)/g, 'user $1')
    .replace(/arn:aws[\w-]*:[^\s,]*[^\s,.]/g, 'the resource')
    .replace(/\bkey spec (\w+)/g, (_, spec: string) => `key_spec ${huaweiSpecOf(spec)}`)
    .replace(/\bKeySpec\b/g, 'key_spec')
    .replace(/\bKeyUsage\b/g, 'key_usage')
    .replace(/\bEncryptionContext\b/g, 'encryption_context');
}

/** The Huawei status, code and message for a KmsError raised while serving `action`. */
export function mapKmsError(err: KmsError, action: string | undefined): { status: number; code: string; message: string } {
  const byAction = action === undefined ? undefined : ownValue(BY_ACTION, action)?.[err.name];
  if (byAction?.message !== undefined) return { status: byAction.status, code: byAction.code, message: byAction.message };
  if (!byAction) {
    for (const rule of REWORDED) {
      if (rule.name !== err.name || (rule.actions && (action === undefined || !rule.actions.includes(action)))) continue;
      const m = rule.pattern.exec(err.message);
      if (m) return { status: 400, code: rule.code, message: rule.message(m, action) };
    }
  }
  const mapped =
    byAction ?? (err.name === 'KMSInvalidStateException' && err.keyState ? BY_KEY_STATE[err.keyState] : undefined) ?? BY_NAME[err.name] ?? { status: 400, code: 'KMS.0308' };
  if (mapped.message !== undefined) return { status: mapped.status, code: mapped.code, message: mapped.message };
  const worded = huaweiWording(err.message);
  if (mapped.code !== 'KMS.0308') return { status: mapped.status, code: mapped.code, message: worded || MESSAGES['KMS.0308'] };
  // The generic code reads like the dialect's own KMS.0308 answers: "Invalid parameter. <why>".
  return { status: mapped.status, code: mapped.code, message: worded ? `${MESSAGES['KMS.0308']} ${worded}` : MESSAGES['KMS.0308'] };
}
