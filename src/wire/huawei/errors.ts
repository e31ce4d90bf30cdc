/**
 * The errors of the Huawei Cloud / Open Telekom Cloud KMS dialect, in its own terms:
 *
 *   HTTP <status>  {"error": {"error_code": "KMS.XXXX", "error_msg": "..."}}
 *
 * Codes, messages and statuses follow the OTC "KMS API Reference – Error Code" table
 * (kms_02_8888: 400 for request and state errors, 500 for KMS.0101/KMS.0102) and the older
 * Huawei Cloud "KMS API Reference – Error Code" table (kms_02_0302: KMS.0207 key does not
 * exist, KMS.0301–KMS.0303 X-Auth-Token, KMS.0305 project, KMS.0306 no permission on the key),
 * whose statuses follow the "Status Codes" page (kms_02_0301: 400, 403, 404, 500) and the
 * 401 the Huawei Cloud API pages list for authentication failures. How the shared operations'
 * errors map onto them: ./error-mapping.ts; the response: ./error-response.ts.
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
