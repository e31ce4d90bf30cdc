import { randomUUID } from 'node:crypto';
import express, { type Request, type Response } from 'express';
import type { Logger } from 'pino';
import type { Caller } from '../../access/principal';
import type { Credentials } from '../../access/credentials';
import { apiCallEvent, type AuditEvent, type AuditSink, eventIdOf } from '../../audit/event';
import type { Clock } from '../../clock';
import type { AuthMode, HuaweiProject } from '../../config/config';
import type { RequestContext, Services } from '../../operations';
import { KmsError } from '../../errors';
import { type Action, ACTIONS, type Body, TAG_ACTIONS, tracedCalls } from './actions';
import { transportOf } from '../../server/listener';
import { hasOwnKey, ownValue } from '../own-properties';
import { HuaweiAuthenticator } from './auth';
import { huaweiErrorResponse } from './error-response';
import { HuaweiError, invalid } from './errors';

export interface HuaweiDeps {
  services: Services;
  log: Logger;
  auth: AuthMode;
  credentials: Credentials;
  /** Account of permissive-mode callers and of unlisted project ids. */
  accountId: string;
  projects: Record<string, HuaweiProject>;
  defaultRegion: string;
  maxBodyBytes: number;
  clock: Clock;
  audit: AuditSink;
}

/** The KMS operation each action stands for in the audit trail when it performed none. */
const ACTION_OPERATION: Record<string, string> = {
  'create-key': 'CreateKey',
  'describe-key': 'DescribeKey',
  'list-keys': 'ListKeys',
  'enable-key': 'EnableKey',
  'disable-key': 'DisableKey',
  'schedule-key-deletion': 'ScheduleKeyDeletion',
  'cancel-key-deletion': 'CancelKeyDeletion',
  'update-key-alias': 'UpdateAlias',
  'update-key-description': 'UpdateKeyDescription',
  'encrypt-data': 'Encrypt',
  'decrypt-data': 'Decrypt',
  'create-datakey': 'GenerateDataKey',
  'create-datakey-without-plaintext': 'GenerateDataKeyWithoutPlaintext',
  'encrypt-datakey': 'Encrypt',
  'decrypt-datakey': 'Decrypt',
  'gen-random': 'GenerateRandom',
  sign: 'Sign',
  verify: 'Verify',
  'get-publickey': 'GetPublicKey',
  'enable-key-rotation': 'EnableKeyRotation',
  'disable-key-rotation': 'DisableKeyRotation',
  'update-key-rotation-interval': 'EnableKeyRotation',
  'get-key-rotation-status': 'GetKeyRotationStatus',
  'create-grant': 'CreateGrant',
  'list-grants': 'ListGrants',
  'list-retirable-grants': 'ListRetirableGrants',
  'revoke-grant': 'RevokeGrant',
  'retire-grant': 'RetireGrant',
  'get-parameters-for-import': 'GetParametersForImport',
  'import-key-material': 'ImportKeyMaterial',
  'delete-imported-key-material': 'DeleteImportedKeyMaterial',
  'create-kms-tag': 'TagResource',
  'delete-kms-tag': 'UntagResource',
  'batch-create-kms-tags': 'TagResource',
  'show-kms-tags': 'ListResourceTags',
};

/** What the router learnt about a request, for its audit record. */
interface Seen {
  action?: string;
  caller?: Caller;
  ctx?: RequestContext;
  region?: string;
}

const PREFIX = '/v1.0/';

/** One route of this dialect: method and path → action, its path parameters and its success status. */
interface Route {
  method: 'GET' | 'POST' | 'DELETE';
  pattern: RegExp;
  /** The action's name (as recorded in the audit trail) and handler, or undefined when the path names none. */
  action: (m: RegExpExecArray) => { name: string; handler: Action } | undefined;
  /** Path parameters handed to the action (raw, still percent-encoded). */
  params?: (m: RegExpExecArray) => Record<string, string>;
  /** 204 for the tag APIs, which answer "No Content". */
  status?: number;
}

const named = (name: string) => (hasOwnKey(ACTIONS, name) ? { name, handler: ACTIONS[name] } : undefined);
const tag = (name: keyof typeof TAG_ACTIONS) => () => ({ name, handler: TAG_ACTIONS[name] });
const keyParam = (m: RegExpExecArray) => ({ key_id: m[2] });

/**
 * The route table: `POST /v1.0/{project_id}/kms/<action>` with a JSON body, and the key tag
 * APIs under `/v1.0/{project_id}/kms/{key_id}/tags` (create, batch create/delete, delete one, list).
 * Group 1 is always the project id. The first route whose method and pattern match wins.
 */
const ROUTES: readonly Route[] = [
  { method: 'POST', pattern: /^\/v1\.0\/([^/]+)\/kms\/([a-z-]+)$/, action: (m) => named(m[2]) },
  { method: 'GET', pattern: /^\/v1\.0\/([^/]+)\/kms\/([^/]+)\/tags$/, action: tag('show-kms-tags'), params: keyParam },
  { method: 'POST', pattern: /^\/v1\.0\/([^/]+)\/kms\/([^/]+)\/tags$/, action: tag('create-kms-tag'), params: keyParam, status: 204 },
  { method: 'POST', pattern: /^\/v1\.0\/([^/]+)\/kms\/([^/]+)\/tags\/action$/, action: tag('batch-create-kms-tags'), params: keyParam, status: 204 },
  {
    method: 'DELETE',
    pattern: /^\/v1\.0\/([^/]+)\/kms\/([^/]+)\/tags\/([^/]+)$/,
    action: tag('delete-kms-tag'),
    params: (m) => ({ key_id: m[2], tag_key: m[3] }),
    status: 204,
  },
];

function route(method: string, path: string): { route: Route; match: RegExpExecArray; name: string; handler: Action } | undefined {
  for (const r of ROUTES) {
    if (r.method !== method) continue;
    const match = r.pattern.exec(path);
    if (!match) continue;
    const found = r.action(match);
    if (found) return { route: r, match, ...found };
  }
  return undefined;
}

/** project_id as IAM issues them (32 hex characters), loosened to any short identifier. */
const PROJECT_ID = /^[A-Za-z0-9_-]{1,64}$/;

/**
 * The Huawei Cloud / Open Telekom Cloud KMS dialect: `POST /v1.0/{project_id}/kms/<action>`
 * with a JSON body, and the key tag APIs (ROUTES). One request flows: authenticate (X-Auth-Token or AK/SK) → project →
 * account and region → action (field mapping onto OPERATIONS, ./actions/) → JSON. Every
 * failure goes through ./errors.ts. Paths under /v1.0/ that name no built action answer 404
 * with APIGW.0101, as Huawei's API gateway does for APIs it does not publish.
 */
export function huaweiRouter(deps: HuaweiDeps): express.Router {
  const authenticator = new HuaweiAuthenticator(deps.auth, deps.credentials, deps.accountId, deps.clock);
  const router = express.Router();
  router.use(PREFIX, express.raw({ type: () => true, limit: deps.maxBodyBytes }), (req, res) => {
    const work = handle(deps, authenticator, req, res);
    deps.services.work?.track(work);
  });
  router.use(PREFIX, (err: unknown, _req: Request, res: Response, _next: (e?: unknown) => void) => {
    const e = err as { type?: string };
    const failure = e.type === 'entity.too.large' ? invalid('KMS.0203') : invalid('KMS.0202');
    void answer(deps, _req, res, requestIdOf(res), huaweiErrorResponse(failure, deps.log, { requestId: requestIdOf(res) }), {});
  });
  return router;
}

async function handle(deps: HuaweiDeps, authenticator: HuaweiAuthenticator, req: Request, res: Response): Promise<void> {
  const requestId = requestIdOf(res);
  let action: string | undefined;
  const seen: Seen = {};
  try {
    const url = req.originalUrl;
    const q = url.indexOf('?');
    const rawPath = q < 0 ? url : url.slice(0, q);
    const rawQuery = q < 0 ? '' : url.slice(q + 1);
    const found = route(req.method, rawPath);
    if (!found) {
      throw new HuaweiError('APIGW.0101', 'The API does not exist or has not been published in the environment.', 404);
    }
    action = found.name;
    seen.action = action;
    const body: Buffer = Buffer.isBuffer(req.body) ? req.body : Buffer.alloc(0);
    const caller = authenticator.authenticate({ method: req.method, rawPath, rawQuery, headers: req.headers, body });
    seen.caller = caller;
    const projectId = found.match[1];
    if (!PROJECT_ID.test(projectId)) throw invalid('KMS.0201');
    // An own entry only: project ids such as "constructor" or "toString" are ordinary unlisted ids.
    const project = ownValue(deps.projects, projectId) ?? { region: deps.defaultRegion, accountId: deps.accountId };
    if (project.accountId !== caller.accountId) {
      throw new HuaweiError('KMS.0305', 'Invalid X-Auth-Token Project Name.', 403);
    }
    const input = parseBody(body);
    const sequence = input.sequence;
    // sequence: a "36-byte serial number of a request message" (kms_02_0034): 36 bytes of UTF-8,
    // not 36 characters; text that is not well-formed has no byte length to count.
    if (sequence !== undefined && (typeof sequence !== 'string' || !sequence.isWellFormed() || Buffer.byteLength(sequence, 'utf8') !== 36)) {
      throw invalid('KMS.0206');
    }
    const ctx: RequestContext = { scope: { region: project.region, accountId: project.accountId }, caller, requestId, sourceIp: req.socket.remoteAddress, transport: transportOf(req.socket), offersPkcs1v15Wrapping: true };
    seen.ctx = ctx;
    seen.region = project.region;
    const run = () => found.handler(input, ctx, deps.services, found.route.params?.(found.match) ?? {});
    // A change this request commits carries the record it would leave if its own were never written.
    const outbox = deps.services.outbox;
    const output = await (outbox ? outbox.within(() => eventIdOf(requestId), () => eventOf(deps, req, requestId, seen), run, seen.action ? ACTION_OPERATION[seen.action] : undefined) : run());
    const status = found.route.status ?? 200;
    // sequence: the request's serial number, echoed so callers can match replies (decrypt-data seed).
    if (sequence !== undefined && status === 200) output.sequence = sequence;
    await answer(deps, req, res, requestId, { status, body: status === 204 ? '' : JSON.stringify(output) }, seen);
  } catch (err) {
    await answer(deps, req, res, requestId, huaweiErrorResponse(err, deps.log, { requestId, action }), seen);
  }
}

/**
 * The one exit of every request of this dialect: its audit record (in CloudTrail's format,
 * naming the dialect, the action and the KMS operations it performed) is made durable, then
 * the reply is sent. A record that cannot be written turns the reply into an internal error.
 */
async function answer(deps: HuaweiDeps, req: Request, res: Response, requestId: string, reply: { status: number; body: string }, seen: Seen): Promise<void> {
  let sent = reply;
  const outbox = deps.services.outbox;
  try {
    const event = eventOf(deps, req, requestId, seen, reply);
    outbox?.crashPointForTests(event);
    await deps.audit.record(event);
    outbox?.settle(event.eventID, true);
  } catch (err) {
    outbox?.settle(eventIdOf(requestId), false);
    deps.log.error({ requestId, action: seen.action, err: (err as Error).message }, 'request refused: its audit record could not be written');
    sent = huaweiErrorResponse(new KmsError('KMSInternalException', 'An internal error occurred.'), deps.log, { requestId });
  }
  send(res, requestId, sent);
}

/** The request's record; without `reply`, as it reads before the request is answered (the audit outbox's). */
function eventOf(deps: HuaweiDeps, req: Request, requestId: string, seen: Seen, reply?: { status: number; body: string }): AuditEvent {
  const calls = seen.ctx ? tracedCalls(seen.ctx) : [];
  // The record is named after the operation the action stands for, where it performed it
  // (create-key and the tag APIs read before they write); otherwise after its first operation.
  const standsFor = seen.action ? ACTION_OPERATION[seen.action] : undefined;
  const primary = calls.find((c) => c.operation === standsFor) ?? calls[0];
  const answered = reply !== undefined && reply.status < 300;
  return apiCallEvent({
    dialect: 'huawei',
    dialectDetail: { action: seen.action ?? 'unknown', ...(calls.length > 1 ? { operations: calls.map((c) => c.operation) } : {}) },
    time: deps.clock.now(),
    requestId,
    operation: primary?.operation ?? (seen.action ? ACTION_OPERATION[seen.action] : undefined),
    ...(seen.caller ? { caller: seen.caller } : {}),
    region: seen.region,
    sourceIp: req.socket.remoteAddress,
    tlsClientSubject: transportOf(req.socket).clientCertificateSubject,
    userAgent: req.headers['user-agent'],
    input: primary?.input,
    inputDecoded: primary !== undefined,
    output: answered ? primary?.output : undefined,
    ...(reply === undefined || answered ? {} : { error: errorOf(reply.body) }),
  });
}

function errorOf(body: string): { code: string; message: string } {
  const parsed = JSON.parse(body) as { error?: { error_code?: string; error_msg?: string } };
  return { code: parsed.error?.error_code ?? 'Unknown', message: parsed.error?.error_msg ?? '' };
}

/**
 * JSON text is UTF-8 (RFC 8259, section 8.1). Fatal: bytes that are not UTF-8 make the body
 * malformed rather than text with U+FFFD in their place, which would encrypt other text than
 * was sent and let different encryption contexts open the same ciphertext. ignoreBOM: a
 * leading BOM stays in the text, where JSON.parse refuses it as before.
 */
const UTF8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

function parseBody(body: Buffer): Body {
  if (body.length === 0) return {};
  let parsed: unknown;
  try {
    parsed = JSON.parse(UTF8.decode(body));
  } catch {
    throw invalid('KMS.0202');
  }
  if (!parsed || typeof parsed !== 'object' || Array.isArray(parsed)) throw invalid('KMS.0202');
  return parsed as Body;
}

function requestIdOf(res: Response): string {
  let id = res.getHeader('X-Request-Id') as string | undefined;
  if (!id) {
    id = randomUUID().replaceAll('-', '');
    res.setHeader('X-Request-Id', id);
  }
  return id;
}

function send(res: Response, requestId: string, reply: { status: number; body: string }): void {
  if (reply.status === 204) {
    res.writeHead(204, { 'X-Request-Id': requestId });
    res.end();
    return;
  }
  res.writeHead(reply.status, {
    'X-Request-Id': requestId,
    'Content-Type': 'application/json;charset=UTF-8',
    'Content-Length': Buffer.byteLength(reply.body),
  });
  res.end(reply.body);
}
