import { isMultiRegion, isReplica, type KeyRecord } from '../store/records';
import type { ConditionValues } from './condition-operators';
import type { Caller } from './principal';
import { principalArnForPolicies } from './principal-matching';

/**
 * What an operation knows about its request that key policies can test (the KMS condition
 * keys AWS defines per operation). Operations fill in what their request carries; the
 * shared key check passes it to `authorize`.
 */
export interface RequestConditions {
  encryptionContext?: Readonly<Record<string, string>>;
  encryptionAlgorithm?: string;
  signingAlgorithm?: string;
  macAlgorithm?: string;
  messageType?: string;
  keyAgreementAlgorithm?: string;
  dataKeyPairSpec?: string;
  /** CreateGrant, ListGrants, RevokeGrant: false, as no AWS service calls on anyone's behalf here. */
  grantIsForAWSResource?: boolean;
  /** CreateGrant */
  grantOperations?: readonly string[];
  granteePrincipal?: string;
  retiringPrincipal?: string;
  grantConstraintType?: readonly string[];
  /** EnableKeyRotation */
  rotationPeriodInDays?: number;
  /** ScheduleKeyDeletion: the PendingWindowInDays the request gave (absent when it gave none). */
  scheduleKeyDeletionPendingWindowInDays?: number;
  /** CreateKey / TagResource */
  requestTags?: readonly { TagKey: string; TagValue: string }[];
  /** TagResource / UntagResource (defaults to the keys of requestTags) */
  tagKeys?: readonly string[];
  /** CreateKey / PutKeyPolicy */
  bypassPolicyLockoutSafetyCheck?: boolean;
  /** The custom key store operations, which have kms:CallerAccount although they have no key. */
  customKeyStoreOperation?: boolean;
  /** ReEncrypt: the source and destination are the same key. */
  reEncryptOnSameKey?: boolean;
  /** GetParametersForImport */
  wrappingAlgorithm?: string;
  wrappingKeySpec?: string;
  /** ImportKeyMaterial: the expiration model in effect, and ValidTo in epoch seconds. */
  expirationModel?: string;
  validTo?: number;
  /** CreateKey: the key that is being created (other operations take these from the key). */
  keySpec?: string;
  keyUsage?: string;
  keyOrigin?: string;
  /** CreateKey (kms:MultiRegion; other operations take it from the key) */
  multiRegion?: boolean;
  /** CreateKey: PRIMARY for a multi-Region key (kms:MultiRegionKeyType; other operations take it from the key). */
  multiRegionKeyType?: 'PRIMARY';
  /** ReplicateKey / UpdatePrimaryRegion */
  replicaRegion?: string;
  primaryRegion?: string;
}

/** Everything condition values are computed from. */
export interface ConditionInput {
  caller: Caller;
  region: string;
  /** The service clock, milliseconds since the epoch. */
  now: number;
  sourceIp?: string;
  /** TLS (aws:SecureTransport) and the mutual-TLS client subject (p11kms:TlsClientSubject). */
  transport?: { secure: boolean; clientCertificateSubject?: string };
  key?: KeyRecord;
  /** The alias the request named the key by (kms:RequestAlias). */
  requestAlias?: string;
  /** Aliases that point at the key (kms:ResourceAliases). */
  resourceAliases?: readonly string[];
  /** The caller's tags (aws:PrincipalTag/<key>). */
  principalTags?: Readonly<Record<string, string>>;
  request: RequestConditions;
}

/**
 * The request's condition values, keyed by lower-cased condition key; computed on first read,
 * because most key policies (the default one included) test no condition at all.
 */
export function conditionValuesOf(input: ConditionInput): ConditionValues {
  return new ConditionValuesOnDemand(input);
}

class ConditionValuesOnDemand implements ReadonlyMap<string, readonly string[]> {
  private computed: ReadonlyMap<string, readonly string[]> | undefined;

  constructor(private readonly input: ConditionInput) {}

  private get map(): ReadonlyMap<string, readonly string[]> {
    return (this.computed ??= computeConditionValues(this.input));
  }

  get size(): number {
    return this.map.size;
  }

  get(key: string): readonly string[] | undefined {
    return this.map.get(key);
  }

  has(key: string): boolean {
    return this.map.has(key);
  }

  forEach(callback: (value: readonly string[], key: string, map: ReadonlyMap<string, readonly string[]>) => void, thisArg?: unknown): void {
    this.map.forEach((value, key) => callback.call(thisArg, value, key, this));
  }

  entries(): MapIterator<[string, readonly string[]]> {
    return this.map.entries();
  }

  keys(): MapIterator<string> {
    return this.map.keys();
  }

  values(): MapIterator<readonly string[]> {
    return this.map.values();
  }

  [Symbol.iterator](): MapIterator<[string, readonly string[]]> {
    return this.map[Symbol.iterator]();
  }
}

function computeConditionValues(input: ConditionInput): ReadonlyMap<string, readonly string[]> {
  const values = new Map<string, readonly string[]>();
  const set = (key: string, value: string | readonly string[] | number | boolean | undefined) => {
    if (value === undefined) return;
    values.set(key.toLowerCase(), Array.isArray(value) ? (value as readonly string[]) : [String(value)]);
  };
  const { caller, request, key } = input;
  set('aws:PrincipalArn', principalArnForPolicies(caller.principalArn));
  set('aws:PrincipalAccount', caller.accountId);
  set('aws:PrincipalType', principalType(caller.principalArn));
  set('aws:userid', userIdOf(caller));
  set('aws:username', userNameOf(caller.principalArn));
  for (const [k, v] of Object.entries(input.principalTags ?? {})) set(`aws:PrincipalTag/${k}`, v);
  // IAM: both "present in the request context for all signed API requests"; false, as no AWS
  // service principal calls p11kms and no service calls on a principal's behalf.
  set('aws:PrincipalIsAWSService', false);
  set('aws:ViaAWSService', false);
  // IAM: "always included in the request context for most service actions" (KMS is not among
  // the exceptions), "the account with the resources evaluated in the request": the key's; for
  // actions on no key (CreateKey, ListKeys, GenerateRandom, the custom key stores, the alias
  // half of the alias operations) the caller's own account, the only one they can act in.
  set('aws:ResourceAccount', key?.accountId ?? caller.accountId);
  // IAM: present "only when the principal uses temporary credentials"; false, as p11kms knows
  // no MFA. aws:TokenIssueTime stays absent: a credentials-file session has no known issue time.
  if (caller.temporaryCredentials) set('aws:MultiFactorAuthPresent', false);
  set('aws:SourceIp', input.sourceIp);
  set('aws:CurrentTime', new Date(input.now).toISOString());
  set('aws:EpochTime', Math.floor(input.now / 1000));
  set('aws:SecureTransport', input.transport?.secure ?? false);
  // p11kms's own key: the subject of the client certificate mutual TLS verified, e.g. "O=Example Corp,CN=billing-app".
  set('p11kms:TlsClientSubject', input.transport?.clientCertificateSubject);
  set('aws:RequestedRegion', input.region);
  // KMS developer guide, kms:CallerAccount: "KMS key resource operations" and "Custom key store
  // operations" only (not ListKeys, CreateKey, ListAliases, GenerateRandom, the alias resource, …).
  if (key || request.customKeyStoreOperation) set('kms:CallerAccount', caller.accountId);
  set('kms:KeySpec', key?.keySpec ?? request.keySpec);
  set('kms:CustomerMasterKeySpec', key?.keySpec ?? request.keySpec);
  set('kms:KeyUsage', key?.keyUsage ?? request.keyUsage);
  set('kms:CustomerMasterKeyUsage', key?.keyUsage ?? request.keyUsage);
  set('kms:KeyOrigin', key?.origin ?? request.keyOrigin);
  set('kms:MultiRegion', key ? isMultiRegion(key) : request.multiRegion);
  if (key) {
    if (isMultiRegion(key)) set('kms:MultiRegionKeyType', isReplica(key) ? 'REPLICA' : 'PRIMARY');
  } else {
    set('kms:MultiRegionKeyType', request.multiRegionKeyType);
  }
  set('kms:ReplicaRegion', request.replicaRegion);
  set('kms:PrimaryRegion', request.primaryRegion);
  if (request.encryptionContext !== undefined) {
    const keys = Object.keys(request.encryptionContext);
    for (const k of keys) set(`kms:EncryptionContext:${k}`, request.encryptionContext[k]);
    if (keys.length > 0) set('kms:EncryptionContextKeys', keys);
  }
  set('kms:EncryptionAlgorithm', request.encryptionAlgorithm);
  set('kms:SigningAlgorithm', request.signingAlgorithm);
  set('kms:MacAlgorithm', request.macAlgorithm);
  set('kms:MessageType', request.messageType);
  set('kms:KeyAgreementAlgorithm', request.keyAgreementAlgorithm);
  set('kms:DataKeyPairSpec', request.dataKeyPairSpec);
  if (request.grantOperations !== undefined) {
    set('kms:GrantOperations', request.grantOperations);
    set('kms:GranteePrincipal', request.granteePrincipal);
    set('kms:RetiringPrincipal', request.retiringPrincipal);
    if (request.grantConstraintType && request.grantConstraintType.length > 0) set('kms:GrantConstraintType', request.grantConstraintType);
  }
  set('kms:GrantIsForAWSResource', request.grantIsForAWSResource);
  set('kms:RotationPeriodInDays', request.rotationPeriodInDays);
  set('kms:ScheduleKeyDeletionPendingWindowInDays', request.scheduleKeyDeletionPendingWindowInDays);
  set('kms:BypassPolicyLockoutSafetyCheck', request.bypassPolicyLockoutSafetyCheck);
  set('kms:ReEncryptOnSameKey', request.reEncryptOnSameKey);
  set('kms:WrappingAlgorithm', request.wrappingAlgorithm);
  set('kms:WrappingKeySpec', request.wrappingKeySpec);
  set('kms:ExpirationModel', request.expirationModel);
  set('kms:ValidTo', request.validTo);
  set('kms:RequestAlias', input.requestAlias);
  if (input.resourceAliases && input.resourceAliases.length > 0) set('kms:ResourceAliases', input.resourceAliases);
  for (const tag of key?.tags ?? []) set(`aws:ResourceTag/${tag.TagKey}`, tag.TagValue);
  for (const tag of request.requestTags ?? []) set(`aws:RequestTag/${tag.TagKey}`, tag.TagValue);
  const tagKeys = request.tagKeys ?? request.requestTags?.map((t) => t.TagKey);
  if (tagKeys && tagKeys.length > 0) set('aws:TagKeys', tagKeys);
  return values;
}

/**
 * aws:userid as IAM sets it: the account id for the root; for users and roles the unique id
 * the credentials file gives (`userId`), else the access key id (p11kms has no IAM unique
 * ids); for an assumed-role session `<role id>:<session name>`.
 */
export function userIdOf(caller: Caller): string {
  if (caller.principalArn.endsWith(':root')) return caller.accountId;
  const session = /:assumed-role\/[^/]+\/(.+)$/.exec(caller.principalArn);
  if (session && !(caller.userId ?? '').includes(':')) return `${caller.userId ?? caller.accessKeyId}:${session[1]}`;
  return caller.userId ?? caller.accessKeyId;
}

/** aws:username: IAM users only (the name without its path). */
function userNameOf(arn: string): string | undefined {
  const m = /^arn:aws[a-z-]*:iam::\d{12}:user\/(?:.*\/)?([^/]+)$/.exec(arn);
  return m?.[1];
}

function principalType(arn: string): string {
  if (arn.endsWith(':root')) return 'Account';
  if (arn.includes(':assumed-role/')) return 'AssumedRole';
  if (arn.includes(':role/')) return 'Role';
  return 'User';
}
