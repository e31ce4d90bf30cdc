import type { Logger } from 'pino';
import { type KmsErrorName, KmsError } from '../../errors';
import type { KeyState } from '../../model/generated/types';

/**
 * The one place a failure becomes a Huawei Cloud / Open Telekom Cloud KMS error response:
 *
 *   HTTP <status>  {"error": {"error_code": "KMS.XXXX", "error_msg": "..."}}
 *
 * Codes, messages and statuses follow the OTC "KMS API Reference – Error Code" table
 * (kms_02_8888: 400 for request and state errors, 500 for KMS.0101/KMS.0102) and the older
 * Huawei Cloud "KMS API Reference – Error Code" table (kms_02_0302: KMS.0207 key does not
 * exist, KMS.0301–KMS.0303 X-Auth-Token, KMS.0305 project, KMS.0306 no permission on the key),
 * whose statuses follow the "Status Codes" page (kms_02_0301: 400, 403, 404, 500) and the
 * 401 the Huawei Cloud API pages list for authentication failures.
 */
export class HuaweiError extends Error {
  constructor(
    readonly code: string,
    message: string,
    readonly status = 400,
  ) {
    super(message);
  }
}

/** Documented messages of the codes this dialect raises itself (OTC kms_02_8888 wording). */
export const MESSAGES = {
  'KMS.0201': 'Invalid request URL.',
  'KMS.0202': 'Invalid JSON format of the request message.',
  'KMS.0203': 'Request message too long.',
  'KMS.0204': 'Parameters missing in the request message.',
  'KMS.0205': 'Invalid key ID.',
  'KMS.0206': 'Invalid sequence number.',
  'KMS.0208': 'Invalid value of value encryption_context.',
  'KMS.0308': 'Invalid parameter.',
  'KMS.0309': 'External keys required.',
  'KMS.0310': 'The key is not in Pending import state.',
  'KMS.0311': 'Failed to decrypt data using the RSA private key.',
  'KMS.0312': 'External keys cannot be rotated.',
  'KMS.0313': 'Key rotation is not enabled.',
  'KMS.0401': 'Tag list cannot be empty.',
  'KMS.0404': 'Invalid action.',
  'KMS.0405': 'Invalid tag value.',
  'KMS.0406': 'Invalid tag key.',
  'KMS.0409': 'Too many tags.',
  'KMS.0410': 'Invalid tag value length.',
  'KMS.0411': 'Invalid tag key length.',
  'KMS.0412': 'Invalid tag list.',
  'KMS.1101': 'Invalid key_alias.',
  'KMS.1103': 'Invalid key_description.',
  'KMS.1401': 'Set the pending deletion period between 7 to 1096 days.',
  'KMS.1601': 'Invalid limit.',
  'KMS.1602': 'marker must be greater than or equals 0.',
  'KMS.1801': 'random_data_length must be in the range 8 bits to 8,192 bits and a multiple of 8.',
  'KMS.1901': 'datakey_length must be in the range 8 bits to 8,192 bits.',
  // KMS.1903, KMS.2104, KMS.2204: Huawei Cloud's codes (not in OTC's table); wording ours.
  'KMS.1903': 'datakey_length must be a multiple of 8.',
  'KMS.2101': 'Invalid plain_text.',
  'KMS.2102': 'datakey_plain_length must be from 1 to 1024 bytes.',
  'KMS.2103': 'Failed to verify the DEK hash.',
  'KMS.2104': 'datakey_plain_length does not match the length of plain_text.',
  'KMS.2201': 'Invalid cipher_text.',
  'KMS.2202': 'datakey_cipher_length must be from 1 to 1024 bytes.',
  'KMS.2204': 'datakey_cipher_length does not match the length of the DEK.',
  'KMS.2401': 'Specify an operation in addition to create-grant.',
  'KMS.2402': 'Invalid user ID.',
  'KMS.2501': 'Invalid grant ID.',
  'KMS.2601': 'Token expired.',
  'KMS.2602': 'Key expiration time must be later than the current time.',
  'KMS.2605': 'Token verification failed.',
  'KMS.2701': 'Key material is not in Enabled or Disabled state and cannot be deleted.',
} as const;

export type DialectCode = keyof typeof MESSAGES;

export function invalid(code: DialectCode, detail?: string): HuaweiError {
  return new HuaweiError(code, detail ? `${MESSAGES[code]} ${detail}` : MESSAGES[code]);
}

interface Mapped {
  status: number;
  code: string;
  /** Fixed message; when absent the KmsError's own message is sent (it never holds secrets). */
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
 * state error than the generic KMS.0210 (OTC kms_02_8888: KMS.1201, KMS.1301, KMS.1402, KMS.1501).
 */
const BY_ACTION: Record<string, Partial<Record<KmsErrorName, Mapped>>> = {
  'enable-key': { KMSInvalidStateException: { status: 400, code: 'KMS.1201', message: 'The key is not disabled.' } },
  'disable-key': { KMSInvalidStateException: { status: 400, code: 'KMS.1301', message: 'The key is not enabled.' } },
  'schedule-key-deletion': {
    KMSInvalidStateException: { status: 400, code: 'KMS.1402', message: 'The key is already in Pending deletion state.' },
    ValidationException: { status: 400, code: 'KMS.1401', message: MESSAGES['KMS.1401'] },
  },
  'cancel-key-deletion': { KMSInvalidStateException: { status: 400, code: 'KMS.1501', message: 'The key is not in Pending deletion state.' } },
  'update-key-description': { ValidationException: { status: 400, code: 'KMS.1103', message: MESSAGES['KMS.1103'] } },
  'create-key': { ValidationException: { status: 400, code: 'KMS.0308' } },
  // Import (kms_02_8888 KMS.0309–KMS.0311): the AWS operations refuse keys of another origin
  // with UnsupportedOperationException and material they cannot unwrap with InvalidCiphertextException.
  'get-parameters-for-import': { UnsupportedOperationException: { status: 400, code: 'KMS.0309', message: MESSAGES['KMS.0309'] } },
  'import-key-material': {
    UnsupportedOperationException: { status: 400, code: 'KMS.0309', message: MESSAGES['KMS.0309'] },
    InvalidCiphertextException: { status: 400, code: 'KMS.0311', message: MESSAGES['KMS.0311'] },
    KMSInvalidStateException: { status: 400, code: 'KMS.0310' },
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

export interface ErrorReply {
  status: number;
  body: string;
}

function reply(status: number, code: string, message: string): ErrorReply {
  return { status, body: JSON.stringify({ error: { error_code: code, error_msg: message } }) };
}

/**
 * Builds the response for any failure. KmsErrors go through the table; HuaweiErrors are
 * already in this dialect's terms; anything else is a defect: logged with its stack and
 * answered with a bare KMS.0101.
 */
export function huaweiErrorResponse(err: unknown, log: Logger, context: { requestId: string; action?: string }): ErrorReply {
  if (err instanceof HuaweiError) return reply(err.status, err.code, err.message);
  if (err instanceof KmsError) {
    const mapped =
      (context.action ? BY_ACTION[context.action]?.[err.name] : undefined) ??
      (err.name === 'KMSInvalidStateException' && err.keyState ? BY_KEY_STATE[err.keyState] : undefined) ??
      BY_NAME[err.name];
    const status = mapped?.status ?? 400;
    if (status >= 500 || err.internalDetail) {
      log.warn({ ...context, error: err.name, detail: err.internalDetail }, 'request failed in the key store');
    }
    if (!mapped) return reply(400, 'KMS.0308', `Invalid parameter. ${err.message}`.trim());
    return reply(status, mapped.code, mapped.message ?? (err.message || MESSAGES['KMS.0308']));
  }
  log.error({ ...context, err }, 'unexpected failure');
  return reply(500, 'KMS.0101', 'KMS error.');
}
