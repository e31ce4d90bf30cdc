import { OPERATIONS as MODEL_OPERATIONS, SHAPES } from '../model/generated/shapes';
import type { OperationName } from '../model/generated/types';

/**
 * What an audit record may say about a request and its response, per operation, as
 * CloudTrail shows KMS calls. An allow-list on purpose: a member nobody listed (a new
 * operation, a new model member) is left out, so a secret can only reach the trail if
 * someone names it here. Plaintexts, ciphertext blobs, data keys, private keys, messages,
 * MACs, signatures, import material, grant tokens and passwords are never listed.
 */
interface Disclosure {
  request: readonly string[];
  /**
   * Request members CloudTrail shows even when the caller left them out, with the value the
   * service used (the AWS developer guide's CloudTrail examples; e.g. Decrypt "always includes
   * the encryptionAlgorithm in the requestParameters").
   */
  always?: Readonly<Record<string, string | boolean>>;
  /** Omitted: responseElements is null, as CloudTrail shows for most KMS calls. */
  response?: readonly string[];
  /**
   * responseElements.keyId is the ARN of the key the call changed, although the response does
   * not name it: the developer guide's examples recorded since December 2022.
   */
  keyArnInResponse?: true;
}

const KEY_ONLY: Disclosure = { request: ['KeyId'] };
const PAGED = ['Limit', 'Marker'] as const;
const XKS_PROXY_SETTINGS = [
  'CloudHsmClusterId',
  'XksProxyUriEndpoint',
  'XksProxyUriPath',
  'XksProxyVpcEndpointServiceName',
  'XksProxyVpcEndpointServiceOwner',
  'XksProxyConnectivity',
] as const;

export const DISCLOSURES: { readonly [Op in OperationName]: Disclosure } = {
  CancelKeyDeletion: { request: ['KeyId'], response: ['KeyId'] },
  ConnectCustomKeyStore: { request: ['CustomKeyStoreId'] },
  CreateAlias: { request: ['AliasName', 'TargetKeyId'] },
  CreateCustomKeyStore: { request: ['CustomKeyStoreName', 'CustomKeyStoreType', ...XKS_PROXY_SETTINGS], response: ['CustomKeyStoreId'] },
  CreateGrant: { request: ['KeyId', 'GranteePrincipal', 'RetiringPrincipal', 'Operations', 'Constraints', 'Name', 'DryRun'], response: ['GrantId'], keyArnInResponse: true },
  CreateKey: {
    request: ['Description', 'KeyUsage', 'KeySpec', 'CustomerMasterKeySpec', 'Origin', 'CustomKeyStoreId', 'BypassPolicyLockoutSafetyCheck', 'Tags', 'MultiRegion', 'XksKeyId', 'Policy'],
    always: { Description: '', KeyUsage: 'ENCRYPT_DECRYPT', KeySpec: 'SYMMETRIC_DEFAULT', Origin: 'AWS_KMS', BypassPolicyLockoutSafetyCheck: false },
    response: ['KeyMetadata'],
  },
  // keyId: the key that decrypted (from the response) when the caller named none.
  Decrypt: { request: ['KeyId', 'EncryptionContext', 'EncryptionAlgorithm', 'DryRun'], always: { EncryptionAlgorithm: 'SYMMETRIC_DEFAULT' } },
  DeleteAlias: { request: ['AliasName'] },
  DeleteCustomKeyStore: { request: ['CustomKeyStoreId'] },
  DeleteImportedKeyMaterial: { request: ['KeyId', 'KeyMaterialId'], response: ['KeyId', 'KeyMaterialId'] },
  DeriveSharedSecret: { request: ['KeyId', 'KeyAgreementAlgorithm', 'DryRun'] },
  DescribeCustomKeyStores: { request: ['CustomKeyStoreId', 'CustomKeyStoreName', ...PAGED] },
  DescribeKey: KEY_ONLY,
  DisableKey: KEY_ONLY,
  DisableKeyRotation: KEY_ONLY,
  DisconnectCustomKeyStore: { request: ['CustomKeyStoreId'] },
  EnableKey: KEY_ONLY,
  EnableKeyRotation: { request: ['KeyId', 'RotationPeriodInDays'] },
  Encrypt: { request: ['KeyId', 'EncryptionContext', 'EncryptionAlgorithm', 'DryRun'], always: { EncryptionAlgorithm: 'SYMMETRIC_DEFAULT' } },
  GenerateDataKey: { request: ['KeyId', 'EncryptionContext', 'NumberOfBytes', 'KeySpec', 'DryRun'] },
  GenerateDataKeyPair: { request: ['KeyId', 'EncryptionContext', 'KeyPairSpec', 'DryRun'] },
  GenerateDataKeyPairWithoutPlaintext: { request: ['KeyId', 'EncryptionContext', 'KeyPairSpec', 'DryRun'] },
  GenerateDataKeyWithoutPlaintext: { request: ['KeyId', 'EncryptionContext', 'KeySpec', 'NumberOfBytes', 'DryRun'] },
  GenerateMac: { request: ['KeyId', 'MacAlgorithm', 'DryRun'] },
  // The developer guide's example shows requestParameters null: NumberOfBytes is not logged.
  GenerateRandom: { request: ['CustomKeyStoreId'] },
  GetKeyLastUsage: KEY_ONLY,
  GetKeyPolicy: { request: ['KeyId', 'PolicyName'] },
  GetKeyRotationStatus: KEY_ONLY,
  GetParametersForImport: { request: ['KeyId', 'WrappingAlgorithm', 'WrappingKeySpec'] },
  GetPublicKey: KEY_ONLY,
  ImportKeyMaterial: {
    request: ['KeyId', 'ValidTo', 'ExpirationModel', 'ImportType', 'KeyMaterialDescription', 'KeyMaterialId'],
    response: ['KeyId', 'KeyMaterialId'],
  },
  ListAliases: { request: ['KeyId', ...PAGED] },
  ListGrants: { request: ['KeyId', 'GrantId', 'GranteePrincipal', ...PAGED] },
  ListKeyPolicies: { request: ['KeyId', ...PAGED] },
  ListKeyRotations: { request: ['KeyId', 'IncludeKeyMaterial', ...PAGED] },
  ListKeys: { request: [...PAGED] },
  ListResourceTags: { request: ['KeyId', ...PAGED] },
  ListRetirableGrants: { request: ['RetiringPrincipal', ...PAGED] },
  PutKeyPolicy: { request: ['KeyId', 'PolicyName', 'Policy', 'BypassPolicyLockoutSafetyCheck'], always: { PolicyName: 'default', BypassPolicyLockoutSafetyCheck: false } },
  ReEncrypt: {
    request: ['SourceKeyId', 'DestinationKeyId', 'SourceEncryptionContext', 'DestinationEncryptionContext', 'SourceEncryptionAlgorithm', 'DestinationEncryptionAlgorithm', 'DryRun'],
    always: { SourceEncryptionAlgorithm: 'SYMMETRIC_DEFAULT', DestinationEncryptionAlgorithm: 'SYMMETRIC_DEFAULT' },
  },
  ReplicateKey: { request: ['KeyId', 'ReplicaRegion', 'Description', 'Tags', 'BypassPolicyLockoutSafetyCheck', 'Policy'], response: ['ReplicaKeyMetadata'] },
  RetireGrant: { request: ['KeyId', 'GrantId', 'DryRun'] },
  RevokeGrant: { request: ['KeyId', 'GrantId', 'DryRun'] },
  RotateKeyOnDemand: { request: ['KeyId'], response: ['KeyId'] },
  ScheduleKeyDeletion: { request: ['KeyId', 'PendingWindowInDays'], response: ['KeyId', 'DeletionDate', 'KeyState', 'PendingWindowInDays'] },
  Sign: { request: ['KeyId', 'MessageType', 'SigningAlgorithm', 'DryRun'], always: { MessageType: 'RAW' } },
  TagResource: { request: ['KeyId', 'Tags'] },
  UntagResource: { request: ['KeyId', 'TagKeys'] },
  UpdateAlias: { request: ['AliasName', 'TargetKeyId'] },
  UpdateCustomKeyStore: { request: ['CustomKeyStoreId', 'NewCustomKeyStoreName', ...XKS_PROXY_SETTINGS] },
  UpdateKeyDescription: { request: ['KeyId', 'Description'] },
  UpdatePrimaryRegion: { request: ['KeyId', 'PrimaryRegion'], keyArnInResponse: true },
  Verify: { request: ['KeyId', 'MessageType', 'SigningAlgorithm', 'DryRun'], always: { MessageType: 'RAW' } },
  VerifyMac: { request: ['KeyId', 'MacAlgorithm', 'DryRun'] },
};

/**
 * Members whose value reaches the trail but must never hold a secret. Checked when this
 * module loads, so a careless edit of the list above stops the service at start-up
 * instead of leaking into a signed, unremovable record.
 */
function refuseSecretMembers(): void {
  for (const [op, disclosure] of Object.entries(DISCLOSURES) as Array<[OperationName, Disclosure]>) {
    const shapes = MODEL_OPERATIONS[op];
    for (const [side, shapeName, members] of [
      ['request', shapes.input, disclosure.request],
      ['response', shapes.output, disclosure.response ?? []],
    ] as const) {
      const structure = shapeName ? SHAPES[shapeName] : undefined;
      for (const member of members) {
        const ref = structure?.members?.[member];
        if (!ref) throw new Error(`audit allow-list: ${op} ${side} has no member ${member}`);
        if (holdsSecret(ref.shape, new Set())) throw new Error(`audit allow-list: ${op} ${side} member ${member} can hold a blob or sensitive value`);
      }
    }
  }
}

function holdsSecret(shapeName: string, seen: Set<string>): boolean {
  if (seen.has(shapeName)) return false;
  seen.add(shapeName);
  const shape = SHAPES[shapeName];
  if (!shape) return true;
  if (shape.type === 'blob' || shape.sensitive) return true;
  const children = [...Object.values(shape.members ?? {}), shape.member, shape.key, shape.value].filter((r) => r !== undefined);
  return children.some((r) => holdsSecret(r.shape, seen));
}

refuseSecretMembers();

/** CloudTrail spells KMS members in lower camel case (keyId, encryptionContext). */
function camel(name: string): string {
  return name.charAt(0).toLowerCase() + name.slice(1);
}

/**
 * Copies the allowed members of `source` (a decoded input or output, or the raw JSON of a
 * request that failed validation) into a CloudTrail-style object; null when nothing is left.
 * Structure members are camel-cased, map keys (encryption context) kept as given. Buffers
 * are dropped wherever they appear, as a second line of defence.
 */
export function disclose(op: OperationName, side: 'request' | 'response', source: unknown): Record<string, unknown> | null {
  const disclosure = DISCLOSURES[op];
  const members = side === 'request' ? disclosure.request : disclosure.response;
  const shapeName = side === 'request' ? MODEL_OPERATIONS[op].input : MODEL_OPERATIONS[op].output;
  const structure = shapeName ? SHAPES[shapeName] : undefined;
  if (!members || !structure?.members || !isRecord(source)) return null;
  const out: Record<string, unknown> = {};
  for (const member of members) {
    if (!Object.prototype.hasOwnProperty.call(source, member) || source[member] === undefined) continue;
    const value = plain(source[member], structure.members[member].shape, 0);
    if (value !== undefined) out[camel(member)] = value;
  }
  return Object.keys(out).length > 0 ? out : null;
}

/**
 * requestParameters as CloudTrail shows them: the allowed members of the request, the members
 * AWS always logs (filled with the value the service used when the caller left them out) and,
 * for Decrypt without a KeyId, the key that decrypted. Only for a request that decoded: the raw
 * JSON of a request refused by validation is shown as it came.
 */
export function requestParametersOf(op: OperationName, input: unknown, output: unknown, decoded: boolean): Record<string, unknown> | null {
  const out = disclose(op, 'request', input);
  if (!decoded || !isRecord(input)) return out;
  // disclose made `out` for this call alone: filled in place (adding members to a spread copy is slow in V8).
  const filled: Record<string, unknown> = out ?? {};
  for (const [member, value] of Object.entries(DISCLOSURES[op].always ?? {})) {
    if (filled[camel(member)] === undefined) filled[camel(member)] = value;
  }
  if (op === 'Decrypt' && filled.keyId === undefined && isRecord(output) && typeof output.KeyId === 'string') filled.keyId = output.KeyId;
  return Object.keys(filled).length > 0 ? filled : null;
}

const MAX_DEPTH = 8;
const MAX_STRING = 8192;

function isRecord(value: unknown): value is Record<string, unknown> {
  return value !== null && typeof value === 'object' && !Array.isArray(value) && !Buffer.isBuffer(value) && !ArrayBuffer.isView(value);
}

function plain(value: unknown, shapeName: string, depth: number): unknown {
  const shape = SHAPES[shapeName];
  if (!shape || shape.type === 'blob' || shape.sensitive || depth >= MAX_DEPTH) return undefined;
  if (value === null || typeof value === 'boolean') return value;
  if (typeof value === 'number') return Number.isFinite(value) ? value : undefined;
  if (typeof value === 'string') return value.length > MAX_STRING ? `${value.slice(0, MAX_STRING)}…` : value;
  if (value instanceof Date) return Number.isNaN(value.getTime()) ? undefined : value.toISOString();
  if (Array.isArray(value)) {
    if (!shape.member) return undefined;
    return value.map((v) => plain(v, shape.member!.shape, depth + 1)).filter((v) => v !== undefined);
  }
  if (!isRecord(value)) return undefined;
  const out: Record<string, unknown> = {};
  if (shape.type === 'map' && shape.value) {
    for (const [k, v] of Object.entries(value)) {
      const p = plain(v, shape.value.shape, depth + 1);
      if (p !== undefined) out[k] = p;
    }
    return out;
  }
  for (const [member, ref] of Object.entries(shape.members ?? {})) {
    if (!Object.prototype.hasOwnProperty.call(value, member)) continue;
    const p = plain(value[member], ref.shape, depth + 1);
    if (p !== undefined) out[camel(member)] = p;
  }
  return out;
}
