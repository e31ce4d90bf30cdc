import type { KeyMetadata, KeyState, OperationName, OperationShapes } from '../../../model/generated/types';
import { OPERATIONS, type RequestContext, type Services } from '../../../operations';
import { KmsError } from '../../../errors';
import { invalid } from '../errors';
import { huaweiSpecOf } from '../key-specs';
import { ownRecord } from '../../own-properties';

// What every Huawei action shares: the traced call into OPERATIONS, input checks in Huawei's
// error codes, output mapping.

export type Body = Record<string, unknown>;
/** `path`: the route's path parameters (key_id, tag_key of the tag APIs), still percent-encoded. */
export type Action = (body: Body, ctx: RequestContext, services: Services, path: Record<string, string>) => Promise<Body>;

/** One KMS operation an action performed, kept for the request's audit record. */
export interface TracedCall {
  operation: OperationName;
  input: unknown;
  output?: unknown;
}

/** The operations each request performed, keyed by its (per-request) context. */
const traces = new WeakMap<RequestContext, TracedCall[]>();

export function tracedCalls(ctx: RequestContext): TracedCall[] {
  return traces.get(ctx) ?? [];
}

export async function call<Op extends OperationName>(
  op: Op,
  input: OperationShapes[Op]['input'],
  ctx: RequestContext,
  services: Services,
): Promise<OperationShapes[Op]['output']> {
  const handler = OPERATIONS[op] as
    | ((i: OperationShapes[Op]['input'], c: RequestContext, s: Services) => Promise<OperationShapes[Op]['output']>)
    | undefined;
  if (!handler) throw new KmsError('UnsupportedOperationException', `${op} is not available.`);
  await services.quotas?.admit(op, input, ctx, services);
  const traced: TracedCall = { operation: op, input };
  const list = traces.get(ctx) ?? [];
  list.push(traced);
  traces.set(ctx, list);
  traced.output = await handler(input, ctx, services);
  return traced.output as OperationShapes[Op]['output'];
}

// ---------------------------------------------------------------------------------------------
// Input helpers

export const HUAWEI_KEY_ID = /^[0-9a-z]{8}-[0-9a-z]{4}-[0-9a-z]{4}-[0-9a-z]{4}-[0-9a-z]{12}$/;
/** Alias URN, e.g. kms:eu-de-ring0:3ba44455500dd43127:alias:4555 (describe-key, kms_02_0018). */
const ALIAS_URN = /^kms:[^:]*:[^:]*:alias:(.+)$/;
const KEY_ALIAS = /^[a-zA-Z0-9:/_-]{1,255}$/;
export const AWS_ALIAS_PREFIX = 'alias/';

/** A string member (Huawei numbers travel as strings; a JSON number is accepted too). */
export function text(body: Body, name: string, required: true): string;
export function text(body: Body, name: string, required?: false): string | undefined;
export function text(body: Body, name: string, required = false): string | undefined {
  const value = body[name];
  if (value === undefined || value === null) {
    if (required) throw invalid('KMS.0204', `${name} is required.`);
    return undefined;
  }
  if (typeof value === 'number' && Number.isFinite(value)) return String(value);
  if (typeof value !== 'string') throw invalid('KMS.0308', `${name} must be a string.`);
  return value;
}

/** A whole number member; `code` is Huawei's error for a value out of range. */
export function whole(body: Body, name: string, code: Parameters<typeof invalid>[0], required: boolean, range: [number, number], step = 1): number | undefined {
  const value = required ? text(body, name, true) : text(body, name);
  if (value === undefined) return undefined;
  const n = /^\d{1,6}$/.test(value) ? Number(value) : NaN;
  if (!Number.isInteger(n) || n < range[0] || n > range[1] || n % step !== 0) throw invalid(code);
  return n;
}

/**
 * A standard Base64 member (message, signature, import_token, encrypted_key_material; not the
 * ciphertext envelope of ../envelope.ts), at most `maxChars` characters. Empty is as invalid
 * as malformed (KMS.0308): an empty signature would otherwise reach the token as an argument
 * it refuses.
 */
export function base64Member(body: Body, name: string, maxChars = Number.POSITIVE_INFINITY): Buffer {
  const value = text(body, name, true);
  if (value.length === 0 || value.length > maxChars || value.length % 4 !== 0 || !/^[A-Za-z0-9+/]*={0,2}$/.test(value)) {
    const limit = Number.isFinite(maxChars) ? ` of at most ${maxChars} characters` : '';
    throw invalid('KMS.0308', `${name} must be non-empty Base64${limit}.`);
  }
  return Buffer.from(value, 'base64');
}

/**
 * key_id: a key ID, or where the API takes them an alias (alias/<key_alias>) or alias URN.
 * Aliases are shared with the AWS dialect: Huawei key_alias "app" is AWS alias "alias/app".
 */
export function keyRef(body: Body, opts: { idOnly?: boolean } = {}): string {
  const value = text(body, 'key_id', true);
  if (HUAWEI_KEY_ID.test(value)) return value;
  if (!opts.idOnly) {
    if (value.startsWith(AWS_ALIAS_PREFIX) && KEY_ALIAS.test(value.slice(AWS_ALIAS_PREFIX.length))) return value;
    const urn = ALIAS_URN.exec(value);
    if (urn && KEY_ALIAS.test(urn[1])) return AWS_ALIAS_PREFIX + urn[1];
  }
  throw invalid('KMS.0205');
}

/** key_alias → AWS alias name; KMS.1101 for what Huawei or the AWS alias rules refuse. */
export function aliasName(body: Body): string {
  const alias = text(body, 'key_alias', true);
  // create-key / update-key-alias: ^[a-zA-Z0-9:/_-]{1,255}$, not ending in /default (reserved for
  // Default Master Keys); the AWS alias name must also fit in 256 characters.
  // ':' matches Huawei's pattern but not AWS's alias characters, and aliases are shared with the AWS API.
  if (!KEY_ALIAS.test(alias) || alias.includes(':') || alias.endsWith('/default') || AWS_ALIAS_PREFIX.length + alias.length > 256) throw invalid('KMS.1101');
  return AWS_ALIAS_PREFIX + alias;
}

/** key_description: at most 255 characters, counted as code points (an emoji is one, not two UTF-16 units). */
export function description(body: Body, required: boolean): string | undefined {
  const value = required ? text(body, 'key_description', true) : text(body, 'key_description');
  if (value !== undefined && [...value].length > 255) throw invalid('KMS.1103');
  return value;
}

/**
 * encryption_context: an object of strings, "key-value pairs with a maximum length of 8192
 * characters" (kms_02_0033 / kms_02_0034), counted as the code points of its JSON text (an
 * emoji is one character, not two UTF-16 units). Every pair is kept as an own property,
 * "__proto__" included: a pair dropped here would silently leave the ciphertext unbound to it.
 * Keys and values must be well-formed Unicode: a lone surrogate has no UTF-8 form, so
 * "\ud800", "\udfff" and U+FFFD would all bind the same ciphertext.
 */
export function encryptionContext(body: Body): Record<string, string> | undefined {
  const value = body.encryption_context;
  if (value === undefined || value === null) return undefined;
  if (typeof value !== 'object' || Array.isArray(value)) throw invalid('KMS.0208');
  const pairs = Object.entries(value as Record<string, unknown>);
  for (const [k, v] of pairs) {
    if (typeof v !== 'string' || k === '') throw invalid('KMS.0208');
    if (!k.isWellFormed() || !v.isWellFormed()) throw invalid('KMS.0208', 'Its keys and values must be well-formed Unicode text.');
  }
  if ([...JSON.stringify(value)].length > 8192) throw invalid('KMS.0208');
  return pairs.length === 0 ? undefined : ownRecord(pairs as [string, string][]);
}

/**
 * encryption_algorithm of encrypt-data / decrypt-data (Huawei Cloud's KMS reference and SDKs;
 * OTC's kms_02_0033/0034 predate it): SYMMETRIC_DEFAULT (the default) for AES_256 keys,
 * RSAES_OAEP_SHA_256 / RSAES_OAEP_SHA_1 for RSA ENCRYPT_DECRYPT keys. SM2_ENCRYPT needs SM2 keys,
 * which the token cannot make.
 */
export const ENCRYPTION_ALGORITHMS = ['SYMMETRIC_DEFAULT', 'RSAES_OAEP_SHA_256', 'RSAES_OAEP_SHA_1'] as const;
export type HuaweiEncryptionAlgorithm = (typeof ENCRYPTION_ALGORITHMS)[number];

export function encryptionAlgorithm(body: Body): HuaweiEncryptionAlgorithm {
  const algorithm = text(body, 'encryption_algorithm') ?? 'SYMMETRIC_DEFAULT';
  if (algorithm === 'SM2_ENCRYPT') throw invalid('KMS.0308', 'encryption_algorithm SM2_ENCRYPT is not supported: SM2 has no mechanism in the token.');
  const known = ENCRYPTION_ALGORITHMS.find((a) => a === algorithm);
  if (!known) throw invalid('KMS.0308', `encryption_algorithm must be one of ${ENCRYPTION_ALGORITHMS.join(', ')}.`);
  return known;
}

/** encryption_context binds symmetric ciphertexts only: RSAES_OAEP has nowhere to keep it. */
export function contextFor(algorithm: HuaweiEncryptionAlgorithm, body: Body): Record<string, string> | undefined {
  const context = encryptionContext(body);
  if (context && algorithm !== 'SYMMETRIC_DEFAULT') throw invalid('KMS.0208', `encryption_context cannot be used with encryption_algorithm ${algorithm}.`);
  return context;
}

// ---------------------------------------------------------------------------------------------
// Output helpers

/** key_state codes (describe-key, kms_02_0018): 1 waiting to be activated … 5 waiting to be imported. */
export const KEY_STATE: Record<KeyState, string> = {
  Creating: '1',
  Enabled: '2',
  Disabled: '3',
  PendingDeletion: '4',
  PendingReplicaDeletion: '4',
  PendingImport: '5',
  Unavailable: '3',
  Updating: '2',
};
export const STATE_BY_CODE: Record<string, KeyState[]> = {
  '1': ['Creating'],
  '2': ['Enabled', 'Updating'],
  '3': ['Disabled', 'Unavailable'],
  '4': ['PendingDeletion', 'PendingReplicaDeletion'],
  '5': ['PendingImport'],
};

export function keyIdOf(arnOrId: string | undefined): string {
  const value = arnOrId ?? '';
  const slash = value.lastIndexOf('key/');
  return slash >= 0 ? value.slice(slash + 'key/'.length) : value;
}

export function hex(buffer: Uint8Array): string {
  return Buffer.from(buffer.buffer, buffer.byteOffset, buffer.length).toString('hex').toUpperCase();
}

export function zero(buffer: Uint8Array | undefined): void {
  buffer?.fill(0);
}

/** Aliases of every key in scope, key id → Huawei key_alias (the first AWS alias by name). */
export async function aliasesByKey(ctx: RequestContext, services: Services, keyId?: string): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  let marker: string | undefined;
  do {
    const page = await call('ListAliases', { KeyId: keyId, Limit: 100, Marker: marker }, ctx, services);
    for (const alias of page.Aliases ?? []) {
      if (alias.TargetKeyId && alias.AliasName && !out.has(alias.TargetKeyId)) {
        out.set(alias.TargetKeyId, alias.AliasName.slice(AWS_ALIAS_PREFIX.length));
      }
    }
    marker = page.Truncated ? page.NextMarker : undefined;
  } while (marker);
  return out;
}

/** key_info as describe-key and list-keys return it (kms_02_0018, Table 5). */
export function keyInfo(m: KeyMetadata, alias: string | undefined, region: string): Body {
  return {
    key_id: m.KeyId,
    // Huawei's domain_id is the account; p11kms's account is the AWS-style account id.
    domain_id: m.AWSAccountId ?? '',
    key_alias: alias ?? '',
    realm: region,
    key_description: m.Description ?? '',
    key_spec: huaweiSpecOf(m.KeySpec ?? ''),
    key_usage: m.KeyUsage ?? 'ENCRYPT_DECRYPT',
    creation_date: m.CreationDate ? String(m.CreationDate.getTime()) : '',
    scheduled_deletion_date: m.DeletionDate ? String(m.DeletionDate.getTime()) : '',
    key_state: KEY_STATE[m.KeyState ?? 'Enabled'],
    default_key_flag: '0',
    // key_type "1" as in the reference's examples (a customer-managed symmetric CMK).
    key_type: '1',
    expiration_time: '',
    origin: m.Origin === 'EXTERNAL' ? 'external' : 'kms',
    key_rotation_enabled: 'false',
    sys_enterprise_project_id: '0',
  };
}

export async function stateOf(keyId: string, ctx: RequestContext, services: Services): Promise<string> {
  const { KeyMetadata: m } = await call('DescribeKey', { KeyId: keyId }, ctx, services);
  return KEY_STATE[m?.KeyState ?? 'Enabled'];
}
