import { createHash } from 'node:crypto';
import { createPublicKey } from 'node:crypto';
import type {
  AlgorithmSpec,
  GrantListEntry,
  GrantOperation,
  KeyMetadata,
  KeySpec,
  KeyState,
  KeyUsageType,
  MessageType,
  OperationName,
  OperationShapes,
  SigningAlgorithmSpec,
  Tag,
  WrappingKeySpec,
} from '../../model/generated/types';
import { OPERATIONS, type RequestContext, type Services } from '../../operations';
import { KmsError } from '../../errors';
import { fromBase64, fromHex, toBase64, toHex } from './envelope';
import { HuaweiError, invalid } from './errors';

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

async function call<Op extends OperationName>(
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

const HUAWEI_KEY_ID = /^[0-9a-z]{8}-[0-9a-z]{4}-[0-9a-z]{4}-[0-9a-z]{4}-[0-9a-z]{12}$/;
/** Alias URN, e.g. kms:eu-de-ring0:3ba44455500dd43127:alias:4555 (describe-key, kms_02_0018). */
const ALIAS_URN = /^kms:[^:]*:[^:]*:alias:(.+)$/;
const KEY_ALIAS = /^[a-zA-Z0-9:/_-]{1,255}$/;
const AWS_ALIAS_PREFIX = 'alias/';

/** A string member (Huawei numbers travel as strings; a JSON number is accepted too). */
function text(body: Body, name: string, required: true): string;
function text(body: Body, name: string, required?: false): string | undefined;
function text(body: Body, name: string, required = false): string | undefined {
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
function whole(body: Body, name: string, code: Parameters<typeof invalid>[0], required: boolean, range: [number, number], step = 1): number | undefined {
  const value = required ? text(body, name, true) : text(body, name);
  if (value === undefined) return undefined;
  const n = /^\d{1,6}$/.test(value) ? Number(value) : NaN;
  if (!Number.isInteger(n) || n < range[0] || n > range[1] || n % step !== 0) throw invalid(code);
  return n;
}

/**
 * key_id: a key ID, or where the API takes them an alias (alias/<key_alias>) or alias URN.
 * Aliases are shared with the AWS dialect: Huawei key_alias "app" is AWS alias "alias/app".
 */
function keyRef(body: Body, opts: { idOnly?: boolean } = {}): string {
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
function aliasName(body: Body): string {
  const alias = text(body, 'key_alias', true);
  // create-key / update-key-alias: ^[a-zA-Z0-9:/_-]{1,255}$, not ending in /default (reserved for
  // Default Master Keys); the AWS alias name must also fit in 256 characters.
  // ':' matches Huawei's pattern but not AWS's alias characters, and aliases are shared with the AWS API.
  if (!KEY_ALIAS.test(alias) || alias.includes(':') || alias.endsWith('/default') || AWS_ALIAS_PREFIX.length + alias.length > 256) throw invalid('KMS.1101');
  return AWS_ALIAS_PREFIX + alias;
}

function description(body: Body, required: boolean): string | undefined {
  const value = required ? text(body, 'key_description', true) : text(body, 'key_description');
  if (value !== undefined && value.length > 255) throw invalid('KMS.1103');
  return value;
}

/** encryption_context: an object of strings, at most 8192 characters as JSON. */
function encryptionContext(body: Body): Record<string, string> | undefined {
  const value = body.encryption_context;
  if (value === undefined || value === null) return undefined;
  if (typeof value !== 'object' || Array.isArray(value)) throw invalid('KMS.0208');
  if (JSON.stringify(value).length > 8192) throw invalid('KMS.0208');
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(value as Record<string, unknown>)) {
    if (typeof v !== 'string' || k === '') throw invalid('KMS.0208');
    out[k] = v;
  }
  return Object.keys(out).length === 0 ? undefined : out;
}

function symmetricOnly(body: Body): void {
  const algorithm = text(body, 'encryption_algorithm');
  if (algorithm !== undefined && algorithm !== 'SYMMETRIC_DEFAULT') {
    throw invalid('KMS.0308', `encryption_algorithm ${algorithm} needs an asymmetric key, which p11kms does not support yet.`);
  }
}

// ---------------------------------------------------------------------------------------------
// Output helpers

/** key_state codes (describe-key, kms_02_0018): 1 waiting to be activated … 5 waiting to be imported. */
const KEY_STATE: Record<KeyState, string> = {
  Creating: '1',
  Enabled: '2',
  Disabled: '3',
  PendingDeletion: '4',
  PendingReplicaDeletion: '4',
  PendingImport: '5',
  Unavailable: '3',
  Updating: '2',
};
const STATE_BY_CODE: Record<string, KeyState[]> = {
  '1': ['Creating'],
  '2': ['Enabled', 'Updating'],
  '3': ['Disabled', 'Unavailable'],
  '4': ['PendingDeletion', 'PendingReplicaDeletion'],
  '5': ['PendingImport'],
};

function keyIdOf(arnOrId: string | undefined): string {
  const value = arnOrId ?? '';
  const slash = value.lastIndexOf('key/');
  return slash >= 0 ? value.slice(slash + 'key/'.length) : value;
}

function hex(buffer: Uint8Array): string {
  return Buffer.from(buffer.buffer, buffer.byteOffset, buffer.length).toString('hex').toUpperCase();
}

function zero(buffer: Uint8Array | undefined): void {
  buffer?.fill(0);
}

/** Aliases of every key in scope, key id → Huawei key_alias (the first AWS alias by name). */
async function aliasesByKey(ctx: RequestContext, services: Services, keyId?: string): Promise<Map<string, string>> {
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
function keyInfo(m: KeyMetadata, alias: string | undefined, region: string): Body {
  return {
    key_id: m.KeyId,
    // Huawei's domain_id is the account; p11kms's account is the AWS-style account id.
    domain_id: m.AWSAccountId ?? '',
    key_alias: alias ?? '',
    realm: region,
    key_description: m.Description ?? '',
    key_spec: AWS_TO_HUAWEI_SPEC[m.KeySpec ?? ''] ?? m.KeySpec ?? '',
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

async function stateOf(keyId: string, ctx: RequestContext, services: Services): Promise<string> {
  const { KeyMetadata: m } = await call('DescribeKey', { KeyId: keyId }, ctx, services);
  return KEY_STATE[m?.KeyState ?? 'Enabled'];
}

// ---------------------------------------------------------------------------------------------
// Key management

/** Huawei key_spec → AWS KeySpec, and the key usages each allows (create-key, kms_02_0012). */
const HUAWEI_SPECS: Record<string, { spec: KeySpec; usages: readonly KeyUsageType[] }> = {
  AES_256: { spec: 'SYMMETRIC_DEFAULT', usages: ['ENCRYPT_DECRYPT'] },
  RSA_2048: { spec: 'RSA_2048', usages: ['SIGN_VERIFY', 'ENCRYPT_DECRYPT'] },
  RSA_3072: { spec: 'RSA_3072', usages: ['SIGN_VERIFY', 'ENCRYPT_DECRYPT'] },
  RSA_4096: { spec: 'RSA_4096', usages: ['SIGN_VERIFY', 'ENCRYPT_DECRYPT'] },
  EC_P256: { spec: 'ECC_NIST_P256', usages: ['SIGN_VERIFY'] },
  EC_P384: { spec: 'ECC_NIST_P384', usages: ['SIGN_VERIFY'] },
};
const AWS_TO_HUAWEI_SPEC: Record<string, string> = Object.fromEntries(Object.entries(HUAWEI_SPECS).map(([h, { spec }]) => [spec, h]));

const createKey: Action = async (body, ctx, services) => {
  const name = aliasName(body);
  const huaweiSpec = text(body, 'key_spec') ?? 'AES_256';
  const mapping = HUAWEI_SPECS[huaweiSpec];
  if (!mapping) throw invalid('KMS.0308', `key_spec ${huaweiSpec} is not supported by this key store (SM2 and SM4 have no mechanism in the token).`);
  const usage = (text(body, 'key_usage') ?? mapping.usages[0]) as KeyUsageType;
  if (!mapping.usages.includes(usage)) throw invalid('KMS.0308', `key_usage ${usage} is not valid for key_spec ${huaweiSpec}.`);
  const origin = text(body, 'origin') ?? 'kms';
  if (origin !== 'kms' && origin !== 'external') throw invalid('KMS.0308', 'origin must be kms or external.');
  const desc = description(body, false);
  // The alias is checked first so that a duplicate alias does not leave a key behind.
  const taken = await call('DescribeKey', { KeyId: name }, ctx, services).then(
    () => true,
    (err: unknown) => {
      if (err instanceof KmsError && err.name === 'NotFoundException') return false;
      throw err;
    },
  );
  if (taken) throw new HuaweiError('KMS.1104', 'Duplicate key aliases.');
  const { KeyMetadata: m } = await call(
    'CreateKey',
    { Description: desc, KeySpec: mapping.spec, KeyUsage: usage, ...(origin === 'external' ? { Origin: 'EXTERNAL' as const } : {}) },
    ctx,
    services,
  );
  const keyId = m!.KeyId;
  try {
    await call('CreateAlias', { AliasName: name, TargetKeyId: keyId }, ctx, services);
  } catch (err) {
    // Lost a race for the alias: the new key is unreachable by name, so it is retired.
    await call('ScheduleKeyDeletion', { KeyId: keyId, PendingWindowInDays: 7 }, ctx, services).catch(() => undefined);
    throw err;
  }
  return { key_info: { key_id: keyId, domain_id: m!.AWSAccountId ?? ctx.scope.accountId } };
};

const describeKey: Action = async (body, ctx, services) => {
  const { KeyMetadata: m } = await call('DescribeKey', { KeyId: keyRef(body) }, ctx, services);
  const aliases = await aliasesByKey(ctx, services, m!.KeyId);
  return { key_info: keyInfo(m!, aliases.get(m!.KeyId), ctx.scope.region) };
};

const listKeys: Action = async (body, ctx, services) => {
  // limit: entries per page; marker: the start position, a non-negative integer given as
  // next_marker (kms_02_0017); key_state: ^[1-5]{1}$.
  const limit = whole(body, 'limit', 'KMS.1601', false, [1, 1000]) ?? 1000;
  const offset = whole(body, 'marker', 'KMS.1602', false, [0, 999_999]) ?? 0;
  const state = text(body, 'key_state');
  if (state !== undefined && !/^[1-5]$/.test(state)) throw invalid('KMS.0308', 'key_state must match ^[1-5]{1}$.');
  const ids: string[] = [];
  let marker: string | undefined;
  do {
    const page = await call('ListKeys', { Limit: 1000, Marker: marker }, ctx, services);
    for (const k of page.Keys ?? []) if (k.KeyId) ids.push(k.KeyId);
    marker = page.Truncated ? page.NextMarker : undefined;
  } while (marker);
  const metadata = await Promise.all(
    ids.map((id) =>
      call('DescribeKey', { KeyId: id }, ctx, services).then(
        (out) => out.KeyMetadata,
        // A key deleted by the sweeper between the two calls is simply not listed.
        (err: unknown) => {
          if (err instanceof KmsError && err.name === 'NotFoundException') return undefined;
          throw err;
        },
      ),
    ),
  );
  const wanted = state === undefined ? undefined : STATE_BY_CODE[state];
  const matching = metadata.filter((m): m is KeyMetadata => m !== undefined && (!wanted || wanted.includes(m.KeyState!)));
  const aliases = await aliasesByKey(ctx, services);
  const page = matching.slice(offset, offset + limit);
  const truncated = offset + limit < matching.length;
  return {
    keys: page.map((m) => m.KeyId),
    key_details: page.map((m) => keyInfo(m, aliases.get(m.KeyId), ctx.scope.region)),
    next_marker: truncated ? String(offset + limit) : '',
    truncated: truncated ? 'true' : 'false',
    total: matching.length,
  };
};

const enableKey: Action = async (body, ctx, services) => {
  const keyId = keyRef(body, { idOnly: true });
  await call('EnableKey', { KeyId: keyId }, ctx, services);
  return { key_info: { key_id: keyId, key_state: await stateOf(keyId, ctx, services) } };
};

const disableKey: Action = async (body, ctx, services) => {
  const keyId = keyRef(body, { idOnly: true });
  await call('DisableKey', { KeyId: keyId }, ctx, services);
  return { key_info: { key_id: keyId, key_state: await stateOf(keyId, ctx, services) } };
};

const scheduleKeyDeletion: Action = async (body, ctx, services) => {
  const keyId = keyRef(body, { idOnly: true });
  // Huawei documents 7–1096 days (KMS.1401 outside). The value goes to the AWS operation,
  // which keeps AWS KMS's 7–30: its refusal is answered with KMS.1401 too (./errors.ts).
  const days = whole(body, 'pending_days', 'KMS.1401', true, [7, 1096])!;
  const out = await call('ScheduleKeyDeletion', { KeyId: keyId, PendingWindowInDays: days }, ctx, services);
  return { key_id: keyIdOf(out.KeyId), key_state: KEY_STATE[out.KeyState ?? 'PendingDeletion'] };
};

const cancelKeyDeletion: Action = async (body, ctx, services) => {
  const keyId = keyRef(body, { idOnly: true });
  await call('CancelKeyDeletion', { KeyId: keyId }, ctx, services);
  return { key_id: keyId, key_state: await stateOf(keyId, ctx, services) };
};

const updateKeyAlias: Action = async (body, ctx, services) => {
  const keyId = keyRef(body, { idOnly: true });
  const name = aliasName(body);
  const { KeyMetadata: m } = await call('DescribeKey', { KeyId: keyId }, ctx, services);
  const current = await call('ListAliases', { KeyId: m!.KeyId, Limit: 100 }, ctx, services);
  const names = (current.Aliases ?? []).map((a) => a.AliasName!);
  if (!names.includes(name)) {
    await call('CreateAlias', { AliasName: name, TargetKeyId: m!.KeyId }, ctx, services);
    // The alias Huawei reports for the key (the first by name) is the one replaced.
    if (names.length > 0) await call('DeleteAlias', { AliasName: names[0] }, ctx, services);
  }
  return { key_info: { key_id: m!.KeyId, key_alias: name.slice(AWS_ALIAS_PREFIX.length) } };
};

const updateKeyDescription: Action = async (body, ctx, services) => {
  const keyId = keyRef(body, { idOnly: true });
  const desc = description(body, true)!;
  await call('UpdateKeyDescription', { KeyId: keyId, Description: desc }, ctx, services);
  return { key_info: { key_id: keyId, key_description: desc } };
};

// ---------------------------------------------------------------------------------------------
// Data

const encryptData: Action = async (body, ctx, services) => {
  const keyId = keyRef(body);
  symmetricOnly(body);
  const context = encryptionContext(body);
  const plain = text(body, 'plain_text', true);
  // plain_text: ^.{1,4096}$, 1 to 4096 bytes as UTF-8 (kms_02_0033).
  const bytes = Buffer.from(plain, 'utf8');
  if (bytes.length < 1 || bytes.length > 4096) throw invalid('KMS.2101');
  try {
    const out = await call('Encrypt', { KeyId: keyId, Plaintext: bytes, EncryptionContext: context }, ctx, services);
    return { key_id: keyIdOf(out.KeyId), cipher_text: toBase64(out.CiphertextBlob!) };
  } finally {
    zero(bytes);
  }
};

const decryptData: Action = async (body, ctx, services) => {
  const cipher = text(body, 'cipher_text', true);
  symmetricOnly(body);
  const context = encryptionContext(body);
  const named = body.key_id === undefined ? undefined : keyRef(body);
  const blob = fromBase64(cipher);
  const out = await call('Decrypt', { CiphertextBlob: blob, KeyId: named, EncryptionContext: context }, ctx, services);
  try {
    return { key_id: keyIdOf(out.KeyId), plain_text: Buffer.from(out.Plaintext!).toString('utf8') };
  } finally {
    zero(out.Plaintext);
  }
};

/** datakey_length (bits, 8–8192 in multiples of 8) or key_spec AES_256 / AES_128; 256 bits by default. */
function dataKeyBytes(body: Body): number {
  const bits = whole(body, 'datakey_length', 'KMS.1901', false, [8, 8192]);
  if (bits !== undefined && bits % 8 !== 0) throw invalid('KMS.1903');
  if (bits !== undefined) return bits / 8;
  const spec = text(body, 'key_spec');
  if (spec === undefined || spec === 'AES_256') return 32;
  if (spec === 'AES_128') return 16;
  throw invalid('KMS.0308', 'key_spec must be AES_256 or AES_128.');
}

const createDatakey: Action = async (body, ctx, services) => {
  const keyId = keyRef(body);
  const context = encryptionContext(body);
  const bytes = dataKeyBytes(body);
  const out = await call('GenerateDataKey', { KeyId: keyId, NumberOfBytes: bytes, EncryptionContext: context }, ctx, services);
  try {
    return { key_id: keyIdOf(out.KeyId), plain_text: hex(out.Plaintext!), cipher_text: toHex(out.CiphertextBlob!) };
  } finally {
    zero(out.Plaintext);
  }
};

const createDatakeyWithoutPlaintext: Action = async (body, ctx, services) => {
  const keyId = keyRef(body);
  const context = encryptionContext(body);
  const bytes = dataKeyBytes(body);
  const out = await call('GenerateDataKeyWithoutPlaintext', { KeyId: keyId, NumberOfBytes: bytes, EncryptionContext: context }, ctx, services);
  return { key_id: keyIdOf(out.KeyId), cipher_text: toHex(out.CiphertextBlob!) };
};

const encryptDatakey: Action = async (body, ctx, services) => {
  const keyId = keyRef(body);
  const context = encryptionContext(body);
  // plain_text: hex of the DEK followed by hex of its SHA-256 digest; datakey_plain_length: the
  // DEK's bytes (kms_02_0022; 64 there, 1–1024 as AWS's data keys here).
  const length = whole(body, 'datakey_plain_length', 'KMS.2102', true, [1, 1024])!;
  const plain = text(body, 'plain_text', true);
  if (!/^[0-9a-fA-F]*$/.test(plain) || plain.length % 2 !== 0 || plain.length <= 64) throw invalid('KMS.2101');
  if (plain.length !== 2 * (length + 32)) throw invalid('KMS.2104');
  const all = Buffer.from(plain, 'hex');
  const dek = all.subarray(0, length);
  try {
    const digest = createHash('sha256').update(dek).digest();
    if (!digest.equals(all.subarray(length))) throw invalid('KMS.2103');
    const out = await call('Encrypt', { KeyId: keyId, Plaintext: dek, EncryptionContext: context }, ctx, services);
    return { key_id: keyIdOf(out.KeyId), cipher_text: toHex(out.CiphertextBlob!), datakey_length: String(length) };
  } finally {
    zero(all);
  }
};

const decryptDatakey: Action = async (body, ctx, services) => {
  const keyId = keyRef(body);
  const context = encryptionContext(body);
  const length = whole(body, 'datakey_cipher_length', 'KMS.2202', true, [1, 1024])!;
  const blob = fromHex(text(body, 'cipher_text', true));
  const out = await call('Decrypt', { CiphertextBlob: blob, KeyId: keyId, EncryptionContext: context }, ctx, services);
  const dek = out.Plaintext!;
  try {
    if (dek.length !== length) throw invalid('KMS.2204');
    return {
      data_key: hex(dek),
      datakey_length: String(length),
      datakey_dgst: createHash('sha256').update(dek).digest('hex').toUpperCase(),
    };
  } finally {
    zero(dek);
  }
};

const genRandom: Action = async (body, ctx, services) => {
  // random_data_length: bits, 8–8192 in multiples of 8 (Huawei Cloud "Generate a random number").
  const bits = whole(body, 'random_data_length', 'KMS.1801', true, [8, 8192], 8)!;
  const out = await call('GenerateRandom', { NumberOfBytes: bits / 8 }, ctx, services);
  try {
    return { random_data: hex(out.Plaintext!) };
  } finally {
    zero(out.Plaintext);
  }
};

/** Every action this dialect serves; anything else under /v1.0/{project_id}/kms/ is not routed. */
// ---------------------------------------------------------------------------------------------
// Signature and verification (Sign, ValidateSignature, ShowPublicKey in the Huawei reference)

const SIGNING_ALGORITHMS: ReadonlySet<string> = new Set([
  'RSASSA_PSS_SHA_256',
  'RSASSA_PSS_SHA_384',
  'RSASSA_PSS_SHA_512',
  'RSASSA_PKCS1_V1_5_SHA_256',
  'RSASSA_PKCS1_V1_5_SHA_384',
  'RSASSA_PKCS1_V1_5_SHA_512',
  'ECDSA_SHA_256',
  'ECDSA_SHA_384',
  'ECDSA_SHA_512',
]);

/** message (Base64, under 4096 bytes), signing_algorithm and message_type (default DIGEST, as Huawei documents). */
function signingRequest(body: Body): { message: Buffer; algorithm: SigningAlgorithmSpec; messageType: MessageType } {
  const message = base64Member(body, 'message');
  if (message.length === 0 || message.length >= 4096) throw invalid('KMS.0308', 'message must be Base64 of 1 to 4095 bytes.');
  const algorithm = text(body, 'signing_algorithm', true);
  if (!SIGNING_ALGORITHMS.has(algorithm)) throw invalid('KMS.0308', `signing_algorithm ${algorithm} is not supported.`);
  const messageType = text(body, 'message_type') ?? 'DIGEST';
  if (messageType !== 'DIGEST' && messageType !== 'RAW') throw invalid('KMS.0308', 'message_type must be DIGEST or RAW.');
  return { message, algorithm: algorithm as SigningAlgorithmSpec, messageType };
}

const sign: Action = async (body, ctx, services) => {
  const { message, algorithm, messageType } = signingRequest(body);
  const out = await call('Sign', { KeyId: keyRef(body), Message: message, SigningAlgorithm: algorithm, MessageType: messageType }, ctx, services);
  return { key_id: keyIdOf(out.KeyId), signature: Buffer.from(out.Signature!).toString('base64') };
};

const verify: Action = async (body, ctx, services) => {
  const { message, algorithm, messageType } = signingRequest(body);
  const signature = base64Member(body, 'signature');
  const keyId = keyRef(body);
  try {
    const out = await call('Verify', { KeyId: keyId, Message: message, Signature: signature, SigningAlgorithm: algorithm, MessageType: messageType }, ctx, services);
    return { key_id: keyIdOf(out.KeyId), signature_valid: 'true' };
  } catch (err) {
    // Huawei answers a signature that does not verify with signature_valid "false", not an error.
    if (err instanceof KmsError && err.name === 'KMSInvalidSignatureException') {
      const { KeyMetadata: m } = await call('DescribeKey', { KeyId: keyId }, ctx, services);
      return { key_id: m!.KeyId, signature_valid: 'false' };
    }
    throw err;
  }
};

const getPublicKey: Action = async (body, ctx, services) => {
  const out = await call('GetPublicKey', { KeyId: keyRef(body) }, ctx, services);
  const pem = createPublicKey({ key: Buffer.from(out.PublicKey!), format: 'der', type: 'spki' }).export({ type: 'spki', format: 'pem' });
  return { key_id: keyIdOf(out.KeyId), public_key: String(pem) };
};

/** Plain standard Base64 (message, signature): not the ciphertext envelope of ./envelope.ts. */
function base64Member(body: Body, name: string): Buffer {
  const value = text(body, name, true);
  if (!/^[A-Za-z0-9+/]*={0,2}$/.test(value) || value.length % 4 !== 0) throw invalid('KMS.0308', `${name} must be Base64.`);
  return Buffer.from(value, 'base64');
}

// ---------------------------------------------------------------------------------------------
// Key tags (OTC kms_02_0046 add a tag, kms_02_0047 delete a tag, kms_02_0045 add or delete tags
// in batches, kms_02_0043 query a key's tags): TagResource / UntagResource / ListResourceTags.

/** A key carries at most 10 tags (kms_02_0043, kms_02_0045). */
const MAX_HUAWEI_TAGS = 10;
/** Characters a tag key or value must not contain: ASCII 0–31, *, <, >, \ and =. */
const TAG_FORBIDDEN = /[\u0000-\u001f*<>\\=]/;

/** key_id of the tag APIs: a path parameter, a key ID only. */
function pathKeyId(path: Record<string, string>): string {
  const id = path.key_id ?? '';
  if (!HUAWEI_KEY_ID.test(id)) throw invalid('KMS.0205');
  return id;
}

/** A tag key: 1–36 characters (KMS.0411), none of TAG_FORBIDDEN (KMS.0406). */
function checkTagKey(key: unknown): asserts key is string {
  if (typeof key !== 'string' || key.length === 0 || TAG_FORBIDDEN.test(key)) throw invalid('KMS.0406');
  if ([...key].length > 36) throw invalid('KMS.0411');
}

/** One TagItem: key 1–36 characters, value 0–43 characters (missing value: empty). */
function tagItem(item: unknown): Tag {
  if (!item || typeof item !== 'object' || Array.isArray(item)) throw invalid('KMS.0412', 'A tag is an object with key and value.');
  const { key, value } = item as { key?: unknown; value?: unknown };
  if (key === undefined || key === null) throw invalid('KMS.0204', 'tag key is required.');
  checkTagKey(key);
  const v = value === undefined || value === null ? '' : value;
  if (typeof v !== 'string' || TAG_FORBIDDEN.test(v)) throw invalid('KMS.0405');
  if ([...v].length > 43) throw invalid('KMS.0410');
  return { TagKey: key, TagValue: v };
}

async function tagsOf(keyId: string, ctx: RequestContext, services: Services): Promise<Tag[]> {
  const out: Tag[] = [];
  let marker: string | undefined;
  do {
    const page = await call('ListResourceTags', { KeyId: keyId, Limit: 50, Marker: marker }, ctx, services);
    out.push(...(page.Tags ?? []));
    marker = page.Truncated ? page.NextMarker : undefined;
  } while (marker);
  return out;
}

async function addTags(keyId: string, tags: Tag[], ctx: RequestContext, services: Services): Promise<void> {
  const keys = new Set((await tagsOf(keyId, ctx, services)).map((t) => t.TagKey));
  for (const t of tags) keys.add(t.TagKey);
  if (keys.size > MAX_HUAWEI_TAGS) throw invalid('KMS.0409', `A key has at most ${MAX_HUAWEI_TAGS}.`);
  await call('TagResource', { KeyId: keyId, Tags: tags }, ctx, services);
}

const createKmsTag: Action = async (body, ctx, services, path) => {
  const keyId = pathKeyId(path);
  if (body.tag === undefined || body.tag === null) throw invalid('KMS.0204', 'tag is required.');
  await addTags(keyId, [tagItem(body.tag)], ctx, services);
  return {};
};

const batchCreateKmsTags: Action = async (body, ctx, services, path) => {
  const keyId = pathKeyId(path);
  const action = text(body, 'action', true);
  if (action !== 'create' && action !== 'delete') throw invalid('KMS.0404', 'action must be create or delete.');
  if (body.tags === undefined || body.tags === null) throw invalid('KMS.0204', 'tags is required.');
  if (!Array.isArray(body.tags)) throw invalid('KMS.0412', 'tags must be an array.');
  if (body.tags.length === 0) throw invalid('KMS.0401');
  const tags = (body.tags as unknown[]).map(tagItem);
  if (action === 'create') await addTags(keyId, tags, ctx, services);
  // delete: tags are removed by key; their values are not compared.
  else await call('UntagResource', { KeyId: keyId, TagKeys: tags.map((t) => t.TagKey) }, ctx, services);
  return {};
};

const deleteKmsTag: Action = async (_body, ctx, services, path) => {
  const keyId = pathKeyId(path);
  let tagKey: string;
  try {
    tagKey = decodeURIComponent(path.tag_key ?? '');
  } catch {
    throw invalid('KMS.0201');
  }
  checkTagKey(tagKey);
  await call('UntagResource', { KeyId: keyId, TagKeys: [tagKey] }, ctx, services);
  return {};
};

const showKmsTags: Action = async (_body, ctx, services, path) => {
  const tags = await tagsOf(pathKeyId(path), ctx, services);
  return { tags: tags.map((t) => ({ key: t.TagKey, value: t.TagValue })), existTagsNum: tags.length, sys_tags: [] };
};

/** The tag APIs, routed by path and method rather than by action name (./router.ts ROUTES). */
export const TAG_ACTIONS = {
  'create-kms-tag': createKmsTag,
  'batch-create-kms-tags': batchCreateKmsTags,
  'delete-kms-tag': deleteKmsTag,
  'show-kms-tags': showKmsTags,
} satisfies Record<string, Action>;

// ---------------------------------------------------------------------------------------------
// Rotation (OTC kms_02_0038 enable, kms_02_0039 disable, kms_02_0040 update interval, kms_02_0041
// status): EnableKeyRotation / DisableKeyRotation / GetKeyRotationStatus / ListKeyRotations.

/** rotation_interval: Huawei accepts 30–365 days; AWS's RotationPeriodInDays (and p11kms) 90–2560. */
const HUAWEI_INTERVAL: [number, number] = [30, 365];
const AWS_MIN_ROTATION_DAYS = 90;

/** AWS refuses rotation for keys it cannot rotate; Huawei names imported keys specifically (KMS.0312). */
async function rotating<T>(keyId: string, ctx: RequestContext, services: Services, op: () => Promise<T>): Promise<T> {
  try {
    return await op();
  } catch (err) {
    if (err instanceof KmsError && err.name === 'UnsupportedOperationException') {
      const { KeyMetadata: m } = await call('DescribeKey', { KeyId: keyId }, ctx, services);
      if (m?.Origin === 'EXTERNAL') throw invalid('KMS.0312');
      throw invalid('KMS.0308', 'Only symmetric (AES_256) keys can be rotated.');
    }
    throw err;
  }
}

const enableKeyRotation: Action = async (body, ctx, services) => {
  const keyId = keyRef(body, { idOnly: true });
  // Huawei's default interval is 365 days, as is AWS's default rotation period.
  await rotating(keyId, ctx, services, () => call('EnableKeyRotation', { KeyId: keyId }, ctx, services));
  return {};
};

const disableKeyRotation: Action = async (body, ctx, services) => {
  const keyId = keyRef(body, { idOnly: true });
  await rotating(keyId, ctx, services, () => call('DisableKeyRotation', { KeyId: keyId }, ctx, services));
  return {};
};

const updateKeyRotationInterval: Action = async (body, ctx, services) => {
  const keyId = keyRef(body, { idOnly: true });
  const raw = text(body, 'rotation_interval', true);
  const days = /^\d{1,4}$/.test(raw) ? Number(raw) : NaN;
  if (!(days >= HUAWEI_INTERVAL[0] && days <= HUAWEI_INTERVAL[1])) throw invalid('KMS.0308', 'rotation_interval must be an integer from 30 to 365.');
  const status = await rotating(keyId, ctx, services, () => call('GetKeyRotationStatus', { KeyId: keyId }, ctx, services));
  if (!status.KeyRotationEnabled) throw invalid('KMS.0313');
  if (days < AWS_MIN_ROTATION_DAYS) {
    throw invalid('KMS.0308', `rotation_interval ${days} is not supported: p11kms rotates at most every ${AWS_MIN_ROTATION_DAYS} days (AWS KMS's RotationPeriodInDays 90–2560).`);
  }
  await rotating(keyId, ctx, services, () => call('EnableKeyRotation', { KeyId: keyId, RotationPeriodInDays: days }, ctx, services));
  return {};
};

const getKeyRotationStatus: Action = async (body, ctx, services) => {
  const keyId = keyRef(body, { idOnly: true });
  const status = await rotating(keyId, ctx, services, () => call('GetKeyRotationStatus', { KeyId: keyId }, ctx, services));
  let count = 0;
  let last: Date | undefined;
  let marker: string | undefined;
  do {
    const page = await call('ListKeyRotations', { KeyId: keyId, Limit: 1000, Marker: marker }, ctx, services);
    for (const r of page.Rotations ?? []) {
      if (!r.RotationDate) continue;
      count += 1;
      if (!last || r.RotationDate > last) last = r.RotationDate;
    }
    marker = page.Truncated ? page.NextMarker : undefined;
  } while (marker);
  return {
    key_rotation_enabled: status.KeyRotationEnabled === true,
    // With rotation off AWS keeps no period to report: Huawei's default (365) is shown.
    rotation_interval: status.RotationPeriodInDays ?? 365,
    last_rotation_time: last ? String(last.getTime()) : '',
    number_of_rotations: count,
  };
};

// ---------------------------------------------------------------------------------------------
// Grants (OTC kms_02_0028 create-grant, kms_02_0029 revoke-grant, kms_02_0030 retire-grant,
// kms_02_0031 list-grants, kms_02_0032 list-retirable-grants).

/** Huawei grant operations → AWS grant operations. */
const GRANT_OPERATIONS: Record<string, GrantOperation> = {
  'create-datakey': 'GenerateDataKey',
  'create-datakey-without-plaintext': 'GenerateDataKeyWithoutPlaintext',
  'encrypt-datakey': 'Encrypt',
  'decrypt-datakey': 'Decrypt',
  'describe-key': 'DescribeKey',
  'create-grant': 'CreateGrant',
  'retire-grant': 'RetireGrant',
  'encrypt-data': 'Encrypt',
  'decrypt-data': 'Decrypt',
};
/** AWS → Huawei: Encrypt and Decrypt each stand for two Huawei operations, both listed. */
const HUAWEI_OPERATIONS: Partial<Record<GrantOperation, string[]>> = {};
for (const [h, a] of Object.entries(GRANT_OPERATIONS)) (HUAWEI_OPERATIONS[a] ??= []).push(h);

/** grantee_principal / retiring_principal: a user or domain (account) ID, ^[a-zA-Z0-9]{1,64}$. */
const HUAWEI_PRINCIPAL = /^[a-zA-Z0-9]{1,64}$/;

/**
 * A Huawei principal as the AWS principal ARN grants hold: a domain is an account (its root),
 * a user is the IAM user of that name in the project's account.
 */
function principalArn(id: string, type: string, accountId: string): string {
  return type === 'domain' ? `arn:aws:iam::${id}:root` : `arn:aws:iam::${accountId}:user/${id}`;
}

/** The reverse of principalArn; other principals (roles, other accounts' users) are shown as their ARN. */
function huaweiPrincipal(arn: string, accountId: string): { id: string; type: 'user' | 'domain' } {
  const root = /^arn:aws:iam::(\d{12}):root$/.exec(arn);
  if (root) return { id: root[1], type: 'domain' };
  const user = /^arn:aws:iam::(\d{12}):user\/([a-zA-Z0-9]{1,64})$/.exec(arn);
  if (user && user[1] === accountId) return { id: user[2], type: 'user' };
  return { id: arn, type: 'user' };
}

function principalMember(body: Body, name: string, required: boolean): string | undefined {
  const value = required ? text(body, name, true) : text(body, name);
  if (value !== undefined && !HUAWEI_PRINCIPAL.test(value)) throw invalid('KMS.2402', `${name} must match ^[a-zA-Z0-9]{1,64}$.`);
  return value;
}

function grantId(body: Body): string {
  const id = text(body, 'grant_id', true);
  if (!/^[0-9a-f]{64}$/.test(id)) throw invalid('KMS.2501', 'grant_id must be 64 hexadecimal characters.');
  return id;
}

const createGrant: Action = async (body, ctx, services) => {
  const keyId = keyRef(body, { idOnly: true });
  const grantee = principalMember(body, 'grantee_principal', true)!;
  const type = text(body, 'grantee_principal_type') ?? 'user';
  if (type !== 'user' && type !== 'domain') throw invalid('KMS.0308', 'grantee_principal_type must be user or domain.');
  const ops = body.operations;
  if (ops === undefined || ops === null) throw invalid('KMS.0204', 'operations is required.');
  if (!Array.isArray(ops) || ops.length === 0 || ops.some((o) => typeof o !== 'string' || !(o in GRANT_OPERATIONS))) {
    throw invalid('KMS.0308', `operations must list some of ${Object.keys(GRANT_OPERATIONS).join(', ')}.`);
  }
  if (ops.every((o) => o === 'create-grant')) throw invalid('KMS.2401');
  const name = text(body, 'name');
  if (name !== undefined && !/^[a-zA-Z0-9:/_-]{1,255}$/.test(name)) throw invalid('KMS.0308', 'name must match ^[a-zA-Z0-9:/_-]{1,255}$.');
  const retiring = principalMember(body, 'retiring_principal', false);
  const out = await call(
    'CreateGrant',
    {
      KeyId: keyId,
      GranteePrincipal: principalArn(grantee, type, ctx.scope.accountId),
      Operations: [...new Set((ops as string[]).map((o) => GRANT_OPERATIONS[o]))],
      ...(name !== undefined ? { Name: name } : {}),
      ...(retiring !== undefined ? { RetiringPrincipal: principalArn(retiring, 'user', ctx.scope.accountId) } : {}),
    },
    ctx,
    services,
  );
  return { grant_id: out.GrantId, grant_token: out.GrantToken };
};

function grantOf(g: GrantListEntry, accountId: string): Body {
  const grantee = huaweiPrincipal(g.GranteePrincipal ?? '', accountId);
  return {
    key_id: keyIdOf(g.KeyId),
    grant_id: g.GrantId,
    grantee_principal: grantee.id,
    grantee_principal_type: grantee.type,
    operations: (g.Operations ?? []).flatMap((o) => HUAWEI_OPERATIONS[o] ?? [o]),
    issuing_principal: huaweiPrincipal(g.IssuingAccount ?? '', accountId).id,
    creation_date: g.CreationDate ? String(g.CreationDate.getTime()) : '',
    name: g.Name ?? '',
    retiring_principal: g.RetiringPrincipal ? huaweiPrincipal(g.RetiringPrincipal, accountId).id : '',
  };
}

/** limit (1–100, default 100) and numeric marker over the whole list, as list-keys pages. */
async function grantPage(body: Body, ctx: RequestContext, fetch: (marker?: string) => Promise<OperationShapes['ListGrants']['output']>): Promise<Body> {
  const limit = whole(body, 'limit', 'KMS.1601', false, [1, 100]) ?? 100;
  const offset = whole(body, 'marker', 'KMS.1602', false, [0, 999_999]) ?? 0;
  const all: GrantListEntry[] = [];
  let marker: string | undefined;
  do {
    const page = await fetch(marker);
    all.push(...(page.Grants ?? []));
    marker = page.Truncated ? page.NextMarker : undefined;
  } while (marker);
  const truncated = offset + limit < all.length;
  return {
    grants: all.slice(offset, offset + limit).map((g) => grantOf(g, ctx.scope.accountId)),
    next_marker: truncated ? String(offset + limit) : '',
    truncated: truncated ? 'true' : 'false',
    total: all.length,
  };
}

const listGrants: Action = async (body, ctx, services) => {
  const keyId = keyRef(body, { idOnly: true });
  return grantPage(body, ctx, (marker) => call('ListGrants', { KeyId: keyId, Limit: 100, Marker: marker }, ctx, services));
};

/** The grants the caller may retire: those whose retiring principal is the caller. */
const listRetirableGrants: Action = async (body, ctx, services) =>
  grantPage(body, ctx, (marker) => call('ListRetirableGrants', { RetiringPrincipal: ctx.caller.principalArn, Limit: 100, Marker: marker }, ctx, services));

const revokeGrant: Action = async (body, ctx, services) => {
  const keyId = keyRef(body, { idOnly: true });
  await call('RevokeGrant', { KeyId: keyId, GrantId: grantId(body) }, ctx, services);
  return {};
};

const retireGrant: Action = async (body, ctx, services) => {
  const keyId = keyRef(body, { idOnly: true });
  await call('RetireGrant', { KeyId: keyId, GrantId: grantId(body) }, ctx, services);
  return {};
};

// ---------------------------------------------------------------------------------------------
// Import (OTC kms_02_0035 get-parameters-for-import, kms_02_0036 import-key-material,
// kms_02_0037 delete-imported-key-material; create-key with origin "external").

const WRAPPING_ALGORITHMS: ReadonlySet<string> = new Set(['RSAES_PKCS1_V1_5', 'RSAES_OAEP_SHA_1', 'RSAES_OAEP_SHA_256', 'RSA_AES_KEY_WRAP_SHA_1', 'RSA_AES_KEY_WRAP_SHA_256']);
const WRAPPING_KEY_SPECS: ReadonlySet<string> = new Set(['RSA_2048', 'RSA_3072', 'RSA_4096']);

/** Standard Base64 of at most `max` characters. */
function base64Text(body: Body, name: string, max: number): Buffer {
  const value = text(body, name, true);
  if (value.length === 0 || value.length > max || value.length % 4 !== 0 || !/^[A-Za-z0-9+/]*={0,2}$/.test(value)) {
    throw invalid('KMS.0308', `${name} must be Base64 of at most ${max} characters.`);
  }
  return Buffer.from(value, 'base64');
}

const getParametersForImport: Action = async (body, ctx, services) => {
  const keyId = keyRef(body, { idOnly: true });
  const algorithm = text(body, 'wrapping_algorithm', true);
  if (!WRAPPING_ALGORITHMS.has(algorithm)) throw invalid('KMS.0308', `wrapping_algorithm must be one of ${[...WRAPPING_ALGORITHMS].join(', ')}.`);
  // The reference returns RSA_2048 wrapping keys by default.
  const spec = text(body, 'wrapping_key_spec') ?? 'RSA_2048';
  if (!WRAPPING_KEY_SPECS.has(spec)) throw invalid('KMS.0308', 'wrapping_key_spec must be RSA_2048, RSA_3072 or RSA_4096.');
  const out = await call(
    'GetParametersForImport',
    { KeyId: keyId, WrappingAlgorithm: algorithm as AlgorithmSpec, WrappingKeySpec: spec as WrappingKeySpec },
    ctx,
    services,
  );
  return {
    key_id: keyIdOf(out.KeyId),
    import_token: Buffer.from(out.ImportToken!).toString('base64'),
    // Seconds since the epoch.
    expiration_time: Math.floor(out.ParametersValidTo!.getTime() / 1000),
    public_key: Buffer.from(out.PublicKey!).toString('base64'),
  };
};

const importKeyMaterial: Action = async (body, ctx, services) => {
  const keyId = keyRef(body, { idOnly: true });
  const token = base64Text(body, 'import_token', 6144);
  // RSA-2048 gives 344 characters; larger wrapping keys and RSA_AES_KEY_WRAP give more.
  const material = base64Text(body, 'encrypted_key_material', 1024);
  const expires = text(body, 'expiration_time');
  let validTo: Date | undefined;
  if (expires !== undefined && expires !== '') {
    if (!/^\d{1,12}$/.test(expires)) throw invalid('KMS.0308', 'expiration_time must be a time in seconds since the epoch.');
    validTo = new Date(Number(expires) * 1000);
    if (validTo.getTime() <= services.clock.now()) throw invalid('KMS.2602');
  }
  await call(
    'ImportKeyMaterial',
    {
      KeyId: keyId,
      ImportToken: token,
      EncryptedKeyMaterial: material,
      ...(validTo ? { ExpirationModel: 'KEY_MATERIAL_EXPIRES' as const, ValidTo: validTo } : { ExpirationModel: 'KEY_MATERIAL_DOES_NOT_EXPIRE' as const }),
    },
    ctx,
    services,
  );
  return {};
};

const deleteImportedKeyMaterial: Action = async (body, ctx, services) => {
  const keyId = keyRef(body, { idOnly: true });
  await call('DeleteImportedKeyMaterial', { KeyId: keyId }, ctx, services);
  return {};
};

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
