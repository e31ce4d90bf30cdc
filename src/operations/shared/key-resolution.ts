import { authorizeAccountAction, authorizeKeyAction } from '../../access/authorize';
import { type ConditionInput, conditionValuesOf, type RequestConditions } from '../../access/condition-keys';
import type { ConditionValues } from '../../access/condition-operators';
import type { GrantRecord } from '../../store/grant-record';
import { KmsError } from '../../errors';
import type { KeyUsageType, OperationName } from '../../model/generated/types';
import { KEY_ID_ACCEPTS_ALIAS } from '../../model/generated/shapes';
import { aliasArn, keyArn, type KeyRecord, type Scope } from '../../store/records';
import type { RequestContext, Services } from '../context';
import { catchUpWithKeyStore, effectiveKeyState } from './custom-key-stores';
import { type KeyStateRule, requireKeyState } from './key-states';

const KEY_ID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
const MULTI_REGION_KEY_ID = /^mrk-[0-9a-f]{32}$/;
const CUSTOM_KEY_STORE_ACTION = /^kms:\w+CustomKeyStores?$/;
const ARN = /^arn:aws[a-z-]*:kms:([a-z0-9-]+):(\d{12}):(key\/[^/]+|alias\/.+)$/;

type Reference =
  | { kind: 'key'; scope: Scope; keyId: string }
  | { kind: 'alias'; scope: Scope; aliasName: string };

/**
 * Parses a KeyId request value in any form AWS accepts (key id, key ARN, alias name,
 * alias ARN) with AWS's NotFoundException texts for malformed or foreign values.
 */
export function parseKeyReference(value: string, ctx: RequestContext, acceptsAlias: boolean): Reference {
  const invalid = () => new KmsError('NotFoundException', `Invalid keyId '${value}'`);
  if (value.startsWith('arn:')) {
    const match = ARN.exec(value);
    if (!match) throw new KmsError('NotFoundException', `Invalid arn ${value}`);
    const [, region, accountId, resource] = match;
    if (region !== ctx.scope.region) throw new KmsError('NotFoundException', `Invalid arn ${region}`);
    const scope = { region, accountId };
    if (resource.startsWith('alias/')) {
      if (!acceptsAlias) throw invalid();
      return { kind: 'alias', scope, aliasName: resource };
    }
    const keyId = resource.slice('key/'.length);
    if (!KEY_ID.test(keyId) && !MULTI_REGION_KEY_ID.test(keyId)) throw invalid();
    return { kind: 'key', scope, keyId };
  }
  if (value.startsWith('alias/')) {
    if (!acceptsAlias) throw invalid();
    return { kind: 'alias', scope: ctx.scope, aliasName: value };
  }
  if (!KEY_ID.test(value) && !MULTI_REGION_KEY_ID.test(value)) throw invalid();
  return { kind: 'key', scope: ctx.scope, keyId: value };
}

/** Finds the key a KeyId request value names, without checking its state or usage. */
export async function findKey(
  services: Services,
  ctx: RequestContext,
  value: string,
  acceptsAlias: boolean,
): Promise<KeyRecord> {
  const ref = parseKeyReference(value, ctx, acceptsAlias);
  let keyId: string;
  if (ref.kind === 'alias') {
    const alias = await services.store.getAlias(ref.scope, ref.aliasName);
    if (!alias) throw new KmsError('NotFoundException', `Alias ${aliasArn(ref.scope, ref.aliasName)} is not found.`);
    keyId = alias.targetKeyId;
  } else {
    keyId = ref.keyId;
  }
  const key = await services.store.getKey({ keyId, region: ref.scope.region });
  if (!key || key.accountId !== ref.scope.accountId) {
    throw new KmsError('NotFoundException', `Key '${keyArn(ref.scope, keyId)}' does not exist`);
  }
  return key;
}

export interface KeyUse {
  operation: OperationName;
  /** The request member holding the key reference (decides whether aliases are accepted). */
  member?: string;
  /** IAM action checked against the key, e.g. kms:Encrypt. Defaults to kms:<operation>. */
  action?: string;
  /** Required key usage for cryptographic operations. */
  usage?: KeyUsageType;
  /** The key states the operation accepts (shared/key-states.ts); cryptographic operations (the default) need Enabled. */
  states?: KeyStateRule;
  /** The request's condition values (encryption context, algorithms, …) for key policies and grants. */
  conditions?: RequestConditions;
  /** The key was found from a ciphertext, not named by the caller. */
  viaCiphertext?: boolean;
  /** The alias the request named the key by (kms:RequestAlias); set by loadKeyFor. */
  requestAlias?: string;
}

/**
 * The one "may this key be used for this" check every operation goes through:
 * resolve the reference, authorise the caller, then check key state and usage with
 * AWS's exceptions and messages.
 */
export async function loadKeyFor(services: Services, ctx: RequestContext, value: string, use: KeyUse): Promise<KeyRecord> {
  return (await loadKeyWithGrant(services, ctx, value, use)).key;
}

/**
 * A store shared by several processes serves reads from a short-lived cache, so a key, grant
 * or alias enabled a moment ago through another process may look refused: a refusal gets a
 * second look at committed state before it is answered. (Rights taken away reach the cache
 * within its bound; rights given are honoured at once.)
 */
async function withSecondLook<T>(services: Services, attempt: (services: Services) => Promise<T>): Promise<T> {
  try {
    return await attempt(services);
  } catch (err) {
    const fresh = services.store.fresh?.();
    if (!fresh || !(err instanceof KmsError)) throw err;
    return attempt({ ...services, store: fresh });
  }
}

/** loadKeyFor, also naming the grant that allowed the request (if a grant did). */
export async function loadKeyWithGrant(
  services: Services,
  ctx: RequestContext,
  value: string,
  use: KeyUse,
): Promise<{ key: KeyRecord; grant?: GrantRecord }> {
  return withSecondLook(services, (s) => loadKeyWithGrantOnce(s, ctx, value, use));
}

async function loadKeyWithGrantOnce(services: Services, ctx: RequestContext, value: string, use: KeyUse): Promise<{ key: KeyRecord; grant?: GrantRecord }> {
  const member = use.member ?? 'KeyId';
  const acceptsAlias = KEY_ID_ACCEPTS_ALIAS[`${use.operation}.${member}`] ?? false;
  const key = await findKey(services, ctx, value, acceptsAlias);
  const ref = parseKeyReference(value, ctx, acceptsAlias);
  const requestAlias = ref.kind === 'alias' ? ref.aliasName : undefined;
  const grant = await authorizeUse(services, ctx, key, use, requestAlias);
  await catchUpWithKeyStore(services, key);
  return { key: checkStateAndUsage(services, key, use), grant };
}

/** Authorisation, state and usage checks for a key already found (e.g. from a ciphertext). */
export async function checkKeyFor(services: Services, ctx: RequestContext, key: KeyRecord, use: KeyUse): Promise<KeyRecord> {
  return withSecondLook(services, async (s) => {
    const current = s === services ? key : ((await s.store.getKey(key)) ?? key);
    await authorizeUse(s, ctx, current, use);
    await catchUpWithKeyStore(s, current);
    return checkStateAndUsage(s, current, use);
  });
}

/** Builds the request's condition values and asks `authorize` (the one decision). */
async function authorizeUse(services: Services, ctx: RequestContext, key: KeyRecord, use: KeyUse, requestAlias = use.requestAlias): Promise<GrantRecord | undefined> {
  const access = services.access;
  const enforce = access?.enforce === true;
  const grants = enforce ? await services.store.listGrants(key) : [];
  const resourceAliases = enforce ? (await services.store.listKeyAliases(key)).map((a) => a.aliasName) : [];
  const request = use.conditions ?? {};
  const values = enforce ? requestConditionValues(services, ctx, { key, requestAlias, resourceAliases, request }) : new Map<string, string[]>();
  const { grant } = authorizeKeyAction(access, {
    caller: ctx.caller,
    action: use.action ?? `kms:${use.operation}`,
    key,
    values,
    request,
    grants,
    grantTokens: ctx.grantTokens,
    viaCiphertext: use.viaCiphertext,
  });
  return grant;
}

/** The condition values of this request (caller, clock, source address, principal tags and `more`). */
export function requestConditionValues(services: Services, ctx: RequestContext, more: Omit<ConditionInput, 'caller' | 'region' | 'now' | 'sourceIp' | 'transport'>): ConditionValues {
  return conditionValuesOf({
    caller: ctx.caller,
    region: ctx.scope.region,
    now: services.clock.now(),
    sourceIp: ctx.sourceIp,
    transport: ctx.transport,
    principalTags: services.access?.directory.principalTagsOf(ctx.caller),
    ...more,
  });
}

/**
 * Actions AWS authorises by IAM policy alone (CreateKey, ListKeys, ListAliases,
 * GenerateRandom, ListRetirableGrants, the custom key store operations): the caller's
 * identity policies must allow the action on `resource` — "*", or for ListRetirableGrants
 * the retiring principal — (the account root always may).
 */
export function checkAccountAction(services: Services, ctx: RequestContext, action: string, conditions: RequestConditions = {}, resource = '*'): void {
  if (!services.access?.enforce) return;
  const request = CUSTOM_KEY_STORE_ACTION.test(action) ? { ...conditions, customKeyStoreOperation: true } : conditions;
  authorizeAccountAction(services.access, ctx.caller, action, resource, requestConditionValues(services, ctx, { request }));
}

/** The alias half of CreateAlias, UpdateAlias and DeleteAlias: the identity policies must allow the action on the alias ARN. */
export function checkAliasAction(services: Services, ctx: RequestContext, action: string, aliasName: string): void {
  if (!services.access?.enforce) return;
  authorizeAccountAction(services.access, ctx.caller, action, aliasArn(ctx.scope, aliasName), requestConditionValues(services, ctx, { request: {} }));
}

function checkStateAndUsage(services: Services, key: KeyRecord, use: KeyUse): KeyRecord {
  requireKeyState(key, use.states ?? 'use', effectiveKeyState(services, key));
  if (use.usage && key.keyUsage !== use.usage) {
    throw new KmsError(
      'InvalidKeyUsageException',
      `${key.arn} key usage is ${key.keyUsage} which is not valid for ${use.operation}.`,
    );
  }
  return key;
}

export function requireEnabled(key: KeyRecord): void {
  requireKeyState(key, 'use');
}

/** AWS's refusal of primary-only operations (ReplicateKey, UpdatePrimaryRegion, rotation) on other keys. */
export function notMultiRegionPrimary(key: KeyRecord): KmsError {
  return new KmsError('UnsupportedOperationException', `${key.arn} is not a multi-region primary key.`);
}
