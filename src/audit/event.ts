import { hash, randomUUID } from 'node:crypto';
import type { Caller } from '../access/principal';
import { oncePerSecond } from '../clock';
import { OPERATIONS as MODEL_OPERATIONS } from '../model/generated/shapes';
import type { OperationName } from '../model/generated/types';
import type { KeyRecord } from '../store/records';
import { DISCLOSURES, disclose, requestParametersOf } from './parameters';

export const EVENT_VERSION = '1.11';
export const EVENT_SOURCE = 'kms.amazonaws.com';

/** One CloudTrail event as p11kms records it (the integrity fields are added by the trail). */
export interface AuditEvent {
  eventVersion: string;
  userIdentity: Record<string, unknown>;
  eventTime: string;
  eventSource: string;
  eventName: string;
  awsRegion: string;
  sourceIPAddress: string;
  userAgent: string;
  errorCode?: string;
  errorMessage?: string;
  requestParameters: Record<string, unknown> | null;
  responseElements: Record<string, unknown> | null;
  additionalEventData?: Record<string, unknown>;
  requestID?: string;
  eventID: string;
  readOnly: boolean;
  resources?: Array<{ accountId: string; type: 'AWS::KMS::Key'; ARN: string }>;
  eventType: 'AwsApiCall' | 'AwsServiceEvent';
  managementEvent: boolean;
  recipientAccountId?: string;
  serviceEventDetails?: Record<string, unknown>;
  eventCategory: 'Management';
}

/** Where the audit trail is written; wire dialects and service tasks depend only on this. */
export interface AuditSink {
  /** Resolves once the event is as durable as the fsync policy promises; rejects if it is not. */
  record(event: AuditEvent): Promise<void>;
}

/** What any wire dialect knows about one API call, successful or not. */
export interface ApiCall {
  /** e.g. 'aws-json', 'huawei': recorded in additionalEventData so auditors can tell them apart. */
  dialect: string;
  /** What the dialect itself called the request (e.g. Huawei's action), for additionalEventData. */
  dialectDetail?: Record<string, string | string[]>;
  time: number;
  requestId: string;
  /** Unknown when the request never named a valid operation. */
  operation: string | undefined;
  /** The authenticated caller; absent when authentication failed or never ran. */
  caller?: Caller;
  /** The access key the request claimed, when authentication failed. */
  claimedAccessKeyId?: string;
  region: string | undefined;
  sourceIp: string | undefined;
  userAgent: string | undefined;
  /** Subject of the client certificate mutual TLS verified, recorded in additionalEventData. */
  tlsClientSubject?: string;
  /** Decoded input, or the raw JSON when the request failed before decoding. */
  input?: unknown;
  /** `input` is the decoded request (the operation ran, or failed after validation). */
  inputDecoded?: boolean;
  output?: unknown;
  error?: { code: string; message: string };
}

/** Operations that read or use a key without changing it, as CloudTrail marks them; none writes to the store. */
export const READ_ONLY_USE: ReadonlySet<string> = new Set([
  'Encrypt',
  'Decrypt',
  'ReEncrypt',
  'GenerateDataKey',
  'GenerateDataKeyWithoutPlaintext',
  'GenerateDataKeyPair',
  'GenerateDataKeyPairWithoutPlaintext',
  'GenerateRandom',
  'GenerateMac',
  'VerifyMac',
  'Sign',
  'Verify',
  'DeriveSharedSecret',
]);

const KEY_ID = /^([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}|mrk-[0-9a-f]{32})$/;
const KEY_ARN = /^arn:aws[a-z-]*:kms:[^:]+:(\d{12}):key\/([0-9a-f-]{36}|mrk-[0-9a-f]{32})$/;

export function apiCallEvent(call: ApiCall): AuditEvent {
  const known = call.operation !== undefined && Object.prototype.hasOwnProperty.call(MODEL_OPERATIONS, call.operation);
  const op = known ? (call.operation as OperationName) : undefined;
  const region = call.region ?? 'unknown';
  const accountId = call.caller?.accountId;
  const event: AuditEvent = {
    eventVersion: EVENT_VERSION,
    userIdentity: identityOf(call),
    eventTime: isoSeconds(call.time),
    eventSource: EVENT_SOURCE,
    eventName: call.operation ?? 'Unknown',
    awsRegion: region,
    sourceIPAddress: call.sourceIp ?? 'unknown',
    userAgent: call.userAgent ?? '',
    // Absent members are undefined, not spread in: a property after a spread in a literal is
    // V8's slow path (measured ~0.5 µs each); JSON.stringify leaves undefined ones out.
    errorCode: call.error?.code,
    errorMessage: call.error?.message,
    requestParameters: op ? requestParametersOf(op, call.input, call.output, call.inputDecoded === true) : null,
    responseElements: op && !call.error ? disclose(op, 'response', call.output) : null,
    additionalEventData: {
      dialect: call.dialect,
      ...call.dialectDetail,
      ...(call.tlsClientSubject ? { tlsClientSubject: call.tlsClientSubject } : {}),
      ...materialIdsOf(call.output),
      ...retiredGrantOf(op, call.output),
    },
    requestID: call.requestId,
    eventID: eventIdOf(call.requestId),
    readOnly: op !== undefined && (READ_ONLY_USE.has(op) || /^(Describe|Get|List)/.test(op)),
    eventType: 'AwsApiCall',
    managementEvent: true,
    recipientAccountId: accountId || undefined,
    eventCategory: 'Management',
  };
  const resources = accountId ? keyArnsOf(call, region, accountId) : [];
  if (resources.length > 0) event.resources = resources.map((ARN) => ({ accountId: KEY_ARN.exec(ARN)![1], type: 'AWS::KMS::Key', ARN }));
  if (op && !call.error && DISCLOSURES[op].keyArnInResponse && resources.length > 0) event.responseElements = { ...event.responseElements, keyId: resources[0] };
  return event;
}

/**
 * The eventID of an API call's record, derived from its request id (a UUID in the name-based
 * form), so that whatever knows the request id — GetKeyLastUsage's CloudTrailEventId — names
 * the record without storing anything more.
 */
export function eventIdOf(requestId: string): string {
  const h = hash('sha256', `p11kms-cloudtrail-event:${requestId}`, 'buffer').subarray(0, 16);
  h[6] = (h[6] & 0x0f) | 0x50;
  h[8] = (h[8] & 0x3f) | 0x80;
  const hex = h.toString('hex');
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}

/**
 * Every record one API call leaves. AWS records a successful ReplicateKey twice: as
 * ReplicateKey in the primary key's region and as CreateKey in the replica's region, so a
 * trail read per region shows the replica's creation; UpdatePrimaryRegion likewise in both
 * regions whose key changed (newPrimaryRegionEvent). A successful RotateKeyOnDemand is
 * followed by the RotateKey service event (rotationType ON_DEMAND) AWS writes when the
 * rotation completes, so every rotation of a key shows as RotateKey.
 *
 * The records after the first are derived from the call's output once it was answered, or,
 * before (the audit outbox's records of a change whose own may never be written), from the key
 * records its transactions wrote (`written`). Their eventIDs derive from the request id too, so
 * the outbox's copy and the record written after the answer are the same record.
 */
export function apiCallEvents(call: ApiCall, written: readonly KeyRecord[] = []): AuditEvent[] {
  const event = apiCallEvent(call);
  if (call.error) return [event];
  switch (call.operation) {
    case 'ReplicateKey':
      return [event, ...replicaCreatedEvent(event, call, written)];
    case 'UpdatePrimaryRegion':
      return [event, ...newPrimaryRegionEvent(event, call)];
    case 'RotateKeyOnDemand':
      return [event, ...onDemandRotationEvent(event, call, written)];
    default:
      return [event];
  }
}

/** ReplicateKey's record in the replica's region: CreateKey, naming the replica. */
function replicaCreatedEvent(event: AuditEvent, call: ApiCall, written: readonly KeyRecord[]): AuditEvent[] {
  const replicaRegion = isRecord(call.input) ? call.input.ReplicaRegion : undefined;
  if (typeof replicaRegion !== 'string') return [];
  const output = isRecord(call.output) ? call.output : {};
  const answered = isRecord(output.ReplicaKeyMetadata) ? output.ReplicaKeyMetadata.Arn : undefined;
  const replica = KEY_ARN.exec(typeof answered === 'string' ? answered : (written.find((k) => k.region === replicaRegion)?.arn ?? ''));
  if (!replica) return [];
  return [
    {
      ...event,
      eventName: 'CreateKey',
      awsRegion: replicaRegion,
      eventID: eventIdOf(`${call.requestId}/CreateKey`),
      additionalEventData: { ...event.additionalEventData, replicatedBy: 'ReplicateKey', primaryRegion: event.awsRegion },
      resources: [{ accountId: replica[1], type: 'AWS::KMS::Key', ARN: replica[0] }],
    },
  ];
}

/**
 * AWS records a successful UpdatePrimaryRegion twice: in the region whose primary became a
 * replica (the call itself) and in the region whose replica became the primary, invoked by
 * KMS on the caller's behalf and naming the key by its ARN there (developer guide,
 * "UpdatePrimaryRegion" CloudTrail example), so each region's trail shows its key's change.
 */
function newPrimaryRegionEvent(event: AuditEvent, call: ApiCall): AuditEvent[] {
  const primaryRegion = isRecord(call.input) ? call.input.PrimaryRegion : undefined;
  const oldPrimary = event.resources?.[0];
  if (!oldPrimary || typeof primaryRegion !== 'string') return [];
  const newPrimaryArn = oldPrimary.ARN.replace(`:kms:${event.awsRegion}:`, `:kms:${primaryRegion}:`);
  return [
    {
      ...event,
      userIdentity: { ...event.userIdentity, invokedBy: EVENT_SOURCE },
      awsRegion: primaryRegion,
      requestParameters: { keyId: newPrimaryArn, primaryRegion },
      responseElements: { keyId: newPrimaryArn },
      eventID: eventIdOf(`${call.requestId}/UpdatePrimaryRegion`),
      resources: [{ ...oldPrimary, ARN: newPrimaryArn }],
    },
  ];
}

/** The RotateKey service event that completes a RotateKeyOnDemand: from its output, or from the key record the rotation wrote. */
function onDemandRotationEvent(event: AuditEvent, call: ApiCall, written: readonly KeyRecord[]): AuditEvent[] {
  const output = isRecord(call.output) ? call.output : {};
  let rotation = rotationDetailsOf(call.output);
  let arn = KEY_ARN.exec(typeof output.KeyId === 'string' ? output.KeyId : '');
  if (!rotation) {
    const rotated = written.find((k) => k.materials.find((m) => m.version === k.currentVersion)?.rotationType === 'ON_DEMAND');
    if (!rotated) return [];
    rotation = rotationWritten(rotated);
    arn = KEY_ARN.exec(rotated.arn);
  }
  if (!rotation || !arn) return [];
  const key = { keyId: arn[2], arn: arn[0], region: event.awsRegion, accountId: arn[1] };
  return [{ ...keyRotatedEvent(key, call.time, rotation), eventID: eventIdOf(`${call.requestId}/RotateKey`) }];
}

/**
 * What an on-demand rotation changed, read from the key record it wrote: the material it made
 * current and the one current before, the newest older version (an AWS_KMS key's new material
 * is the next version; an EXTERNAL key's pending material is the only version above the current).
 */
function rotationWritten(key: KeyRecord): RotationDetails | undefined {
  const current = key.materials.find((m) => m.version === key.currentVersion);
  const previous = key.materials.filter((m) => m.version < key.currentVersion).sort((a, b) => b.version - a.version)[0];
  if (!current || !previous) return undefined;
  return { rotationType: 'ON_DEMAND', keyOrigin: key.origin, previousKeyMaterialId: previous.materialId, currentKeyMaterialId: current.materialId };
}

function identityOf(call: ApiCall): Record<string, unknown> {
  const caller = call.caller;
  if (!caller) return { type: 'Unknown', ...(call.claimedAccessKeyId ? { accessKeyId: call.claimedAccessKeyId } : {}) };
  const resource = caller.principalArn.split(':').slice(5).join(':');
  const type = resource === 'root' ? 'Root' : resource.startsWith('assumed-role/') ? 'AssumedRole' : resource.startsWith('role/') ? 'Role' : 'IAMUser';
  return {
    type,
    principalId: type === 'Root' ? caller.accountId : resource.split('/').slice(1).join('/'),
    arn: caller.principalArn,
    accountId: caller.accountId,
    accessKeyId: caller.accessKeyId,
    // CloudTrail names an IAM user by its friendly name (the ARN's last path segment) too.
    ...(type === 'IAMUser' ? { userName: resource.split('/').at(-1) } : {}),
  };
}

/** Key ARNs the call touched: what the response named, else what the request named by id or ARN. */
function keyArnsOf(call: ApiCall, region: string, accountId: string): string[] {
  const arns = new Set<string>();
  const add = (value: unknown) => {
    if (typeof value !== 'string') return;
    if (KEY_ARN.test(value)) arns.add(value);
    else if (KEY_ID.test(value)) arns.add(`arn:aws:kms:${region}:${accountId}:key/${value}`);
  };
  const output = isRecord(call.output) ? call.output : {};
  for (const member of ['KeyId', 'SourceKeyId']) add(output[member]);
  for (const meta of [output.KeyMetadata, output.ReplicaKeyMetadata]) if (isRecord(meta)) add(meta.Arn);
  // ReplicateKey answers with the replica only; the primary it names is touched too.
  if ((arns.size === 0 || isRecord(output.ReplicaKeyMetadata)) && isRecord(call.input)) {
    for (const member of ['KeyId', 'TargetKeyId', 'SourceKeyId', 'DestinationKeyId']) add(call.input[member]);
  }
  return [...arns];
}

/**
 * The grant a RetireGrant retired, which CloudTrail records in additionalEventData (developer
 * guide, "RetireGrant" CloudTrail example): a call by grant token names it nowhere else.
 */
function retiredGrantOf(op: OperationName | undefined, output: unknown): Record<string, string> {
  return op === 'RetireGrant' && isRecord(output) && typeof output.GrantId === 'string' ? { grantId: output.GrantId } : {};
}

/** Key material ids are public identifiers; CloudTrail puts them in additionalEventData. */
function materialIdsOf(output: unknown): Record<string, string> {
  const out: Record<string, string> = {};
  if (!isRecord(output)) return out;
  for (const member of ['KeyMaterialId', 'SourceKeyMaterialId', 'DestinationKeyMaterialId']) {
    const v = output[member];
    if (typeof v === 'string') out[member.charAt(0).toLowerCase() + member.slice(1)] = v;
  }
  return out;
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return value !== null && typeof value === 'object' && !Array.isArray(value) && !Buffer.isBuffer(value);
}

/** CloudTrail writes event times to the second, in UTC. */
export const isoSeconds = oncePerSecond((date) => date.toISOString().replace('.000Z', 'Z'));

/** The key a service event concerns. */
export interface KeyRef {
  keyId: string;
  arn: string;
  region: string;
  accountId: string;
}

/** What AWS writes as the caller, source and agent of the actions KMS takes by itself. */
export const SERVICE_INVOKER = 'AWS Internal';

/**
 * An action KMS takes by itself, as CloudTrail records it (AwsServiceEvent, invoked by the
 * service, no request): the developer guide's examples name the key in `resources` and in
 * `serviceEventDetails`, with the event's own details (rotationType, keyMaterialId) beside it,
 * and, since December 2022, its ARN in `responseElements.keyId`. p11kms's own details (every
 * material id a deletion destroyed) go to additionalEventData.
 */
export function serviceEvent(
  eventName: string,
  key: KeyRef,
  time: number,
  parts: { serviceDetails?: Record<string, unknown>; additional?: Record<string, unknown>; keyArnInResponse?: boolean } = {},
): AuditEvent {
  return {
    eventVersion: EVENT_VERSION,
    userIdentity: { accountId: key.accountId, invokedBy: SERVICE_INVOKER },
    eventTime: isoSeconds(time),
    eventSource: EVENT_SOURCE,
    eventName,
    awsRegion: key.region,
    sourceIPAddress: SERVICE_INVOKER,
    userAgent: SERVICE_INVOKER,
    requestParameters: null,
    responseElements: parts.keyArnInResponse ? { keyId: key.arn } : null,
    ...(parts.additional && Object.keys(parts.additional).length > 0 ? { additionalEventData: parts.additional } : {}),
    eventID: randomUUID(),
    readOnly: false,
    resources: [{ accountId: key.accountId, type: 'AWS::KMS::Key', ARN: key.arn }],
    eventType: 'AwsServiceEvent',
    managementEvent: true,
    recipientAccountId: key.accountId,
    serviceEventDetails: { ...parts.serviceDetails, keyId: key.keyId },
    eventCategory: 'Management',
  };
}

/** The waiting period of ScheduleKeyDeletion ended and the key and its material are gone. */
export function keyDeletedEvent(key: KeyRef, time: number, materialIds: readonly string[]): AuditEvent {
  return serviceEvent('DeleteKey', key, time, { additional: { keyMaterialIds: [...materialIds] }, keyArnInResponse: true });
}

/** What a rotation changed, as CloudTrail's RotateKey event details it. */
export interface RotationDetails {
  rotationType: 'AUTOMATIC' | 'ON_DEMAND';
  keyOrigin: string;
  previousKeyMaterialId: string;
  currentKeyMaterialId: string;
}

const ROTATION_DETAILS = Symbol('RotateKey details');

/**
 * RotateKeyOnDemand's output carries its rotation's details to the RotateKey record that
 * follows the call's own (apiCallEvents). A symbol is no model member: the client never sees it.
 */
export function withRotationDetails<T extends object>(output: T, details: RotationDetails): T {
  Object.defineProperty(output, ROTATION_DETAILS, { value: details, enumerable: false });
  return output;
}

function rotationDetailsOf(output: unknown): RotationDetails | undefined {
  return isRecord(output) ? ((output as Record<symbol, unknown>)[ROTATION_DETAILS] as RotationDetails | undefined) : undefined;
}

/**
 * New key material became current: by the schedule (AUTOMATIC) or by RotateKeyOnDemand
 * (ON_DEMAND, recorded after that call's own record, as AWS does). The fields, their order and
 * the null responseElements are the developer guide's RotateKey example (eventVersion 1.11).
 */
export function keyRotatedEvent(key: KeyRef, time: number, rotation: RotationDetails): AuditEvent {
  return serviceEvent('RotateKey', key, time, { serviceDetails: { ...rotation } });
}

/** Imported key material reached its ValidTo and was deleted. */
export function importedMaterialExpiredEvent(key: KeyRef, time: number, keyMaterialId: string): AuditEvent {
  return serviceEvent('DeleteExpiredKeyMaterial', key, time, { serviceDetails: { keyMaterialId } });
}
