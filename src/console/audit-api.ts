import { randomUUID } from 'node:crypto';
import express, { type Request, type Response } from 'express';
import type { Logger } from 'pino';
import type { Caller } from '../access/principal';
import { apiCallEvent, type AuditSink } from '../audit/event';
import { parseErrorFilter, parseTime, type QueryFilter } from '../audit/query';
import { KmsError } from '../errors';
import type { AuditReader } from './audit-reader';
import { MAX_DATE_MS } from './audit-reads';
import type { Services } from '../operations';
import { checkAccountAction } from '../operations/shared/key-resolution';
import { errorResponse } from '../wire/aws-json/error-response';
import type { SigV4Authenticator } from '../wire/aws-json/sigv4-auth';

/** The one permission that opens the trail; in strict mode an identity policy must allow it by name (or "*"). */
export const READ_AUDIT_TRAIL = 'p11kms:ReadAuditTrail';
export const AUDIT_API_PREFIX = '/audit';
const DEFAULT_LIMIT = 200;
const MAX_LIMIT = 1000;

export interface AuditApiDeps {
  services: Services;
  authenticator: SigV4Authenticator;
  audit: AuditSink;
  auditDir: string;
  /**
   * The signing key's public halves, every version, as the token holds them (not the copies on
   * disk, which an attacker could replace too).
   */
  trustedKeys: () => readonly string[];
  /** Records of calls that never authenticated belong to no account; this deployment's own account sees them. */
  defaultAccountId: string;
  log: Logger;
  /** Where the reads of the trail run (off the event loop). */
  reader: AuditReader;
}

/**
 * The read-only audit endpoint (what the console's audit view reads): `GET /audit/events`
 * (the same filters as `audit query`, plus a summary for charts) and `GET /audit/verify` (the
 * same check as `audit verify`). SigV4 as on the KMS API, `p11kms:ReadAuditTrail` in strict mode,
 * and each read is itself recorded. A caller sees the records of its own account only.
 */
export function auditApiRouter(deps: AuditApiDeps): express.Router {
  const router = express.Router();
  router.get('/events', (req, res) => void handle(deps, req, res, 'LookupEvents', (caller) => lookup(deps, caller, req)));
  router.get('/verify', (req, res) => void handle(deps, req, res, 'VerifyTrail', () => deps.reader.verify({ auditDir: deps.auditDir, trustedKeys: deps.trustedKeys() })));
  return router;
}

async function handle(deps: AuditApiDeps, req: Request, res: Response, eventName: string, run: (caller: Caller) => Promise<unknown>): Promise<void> {
  const requestId = randomUUID();
  const query = queryOf(req);
  let caller: Caller | undefined;
  let region: string | undefined;
  let reply: { status: number; body: string };
  try {
    // Who asks comes first: a caller who is not authenticated and allowed learns nothing about
    // the parameters (an unsigned request is a 403 whatever its query says).
    const repeatedQuery = repeatedParameters(req);
    const auth = await deps.authenticator.authenticate({
      method: req.method,
      host: req.headers.host ?? '',
      // Signed over the full path; inside this router req.path lacks the mount point.
      path: req.originalUrl.split('?')[0],
      query,
      ...(Object.keys(repeatedQuery).length > 0 ? { repeatedQuery } : {}),
      headers: req.headers as Record<string, string | undefined>,
      body: Buffer.alloc(0),
    });
    caller = auth.caller;
    region = auth.region;
    // An account-level action like CreateKey: the caller's identity policies decide (kms:* does not match it).
    checkAccountAction(deps.services, { scope: { region, accountId: caller.accountId }, caller, requestId, sourceIp: req.socket.remoteAddress }, READ_AUDIT_TRAIL);
    refuseRepeatedParameters(repeatedQuery);
    refuseUnknownParameters(query, eventName === 'LookupEvents' ? LOOKUP_PARAMETERS : []);
    reply = { status: 200, body: JSON.stringify(await run(caller)) };
  } catch (err) {
    reply = errorResponse(err, deps.log, { requestId, operation: eventName });
  }
  const filter = Object.fromEntries(Object.entries(query).filter(([k]) => !k.startsWith('X-Amz-')));
  try {
    const error = reply.status === 200 ? undefined : (JSON.parse(reply.body) as { __type: string; message: string });
    await deps.audit.record({
      ...apiCallEvent({
        dialect: 'audit-api',
        time: deps.services.clock.now(),
        requestId,
        operation: eventName,
        ...(caller ? { caller } : {}),
        region,
        sourceIp: req.socket.remoteAddress,
        userAgent: req.headers['user-agent'],
        ...(error ? { error: { code: error.__type, message: error.message } } : {}),
      }),
      eventSource: 'audit.p11kms',
      readOnly: true,
      requestParameters: Object.keys(filter).length > 0 ? filter : null,
    });
  } catch (err) {
    deps.log.error({ requestId, err: (err as Error).message }, 'audit read refused: its own audit record could not be written');
    reply = { status: 500, body: JSON.stringify({ __type: 'KMSInternalException', message: 'An internal error occurred.' }) };
  }
  res.status(reply.status).set({ 'Content-Type': 'application/json', 'Cache-Control': 'no-store', 'x-amzn-RequestId': requestId }).send(reply.body);
}

/** Checks the filters here (a refusal costs no read), then reads on the audit read thread. */
function lookup(deps: AuditApiDeps, caller: Caller, req: Request): Promise<unknown> {
  const q = queryOf(req);
  const filter = filterOf(q);
  const limit = q.limit === undefined ? DEFAULT_LIMIT : /^\d{1,7}$/.test(q.limit) ? Number(q.limit) : NaN;
  if (!(limit >= 1 && limit <= MAX_LIMIT)) {
    throw new KmsError('ValidationException', `1 validation error detected: Value '${q.limit}' at 'limit' failed to satisfy constraint: Member must be between 1 and ${MAX_LIMIT}`);
  }
  return deps.reader.lookup({ auditDir: deps.auditDir, callerAccountId: caller.accountId, defaultAccountId: deps.defaultAccountId, filter, limit, now: deps.services.clock.now() });
}

function filterOf(q: Record<string, string>): QueryFilter {
  const time = (name: 'from' | 'to') => {
    if (!q[name]) return undefined;
    let t: number;
    try {
      t = parseTime(q[name]);
    } catch (err) {
      throw new KmsError('ValidationException', `'${name}': ${(err as Error).message}`);
    }
    // 99999999d ago parses to a number no Date can hold (and 9…9d to -Infinity).
    if (!(Math.abs(t) <= MAX_DATE_MS)) throw new KmsError('ValidationException', `'${name}': '${q[name]}' is outside the range of possible times`);
    return t;
  };
  const from = time('from');
  const to = time('to');
  if (from !== undefined && to !== undefined && from > to) {
    throw new KmsError('ValidationException', `'from' (${q.from}) is later than 'to' (${q.to})`);
  }
  let error: boolean | string | undefined;
  try {
    error = q.error ? parseErrorFilter(q.error) : undefined;
  } catch (err) {
    throw new KmsError('ValidationException', `'error': ${(err as Error).message}`);
  }
  return {
    ...(q.key ? { key: q.key } : {}),
    ...(q.principal ? { principal: q.principal } : {}),
    ...(q.eventName ? { eventName: q.eventName } : {}),
    ...(error !== undefined ? { error } : {}),
    ...(from !== undefined ? { from } : {}),
    ...(to !== undefined ? { to } : {}),
  };
}

/** The filters `GET /audit/events` takes; `/audit/verify` takes none. SigV4's own `X-Amz-*` go with either. */
const LOOKUP_PARAMETERS = ['from', 'to', 'eventName', 'key', 'principal', 'error', 'limit'];

/** A misspelt filter (`evntName`) would otherwise be ignored and the whole trail returned as if it matched. */
function refuseUnknownParameters(query: Record<string, string>, known: readonly string[]): void {
  const unknown = Object.keys(query).filter((k) => !k.startsWith('X-Amz-') && !known.includes(k));
  if (unknown.length > 0) {
    throw new KmsError('ValidationException', `Unknown query parameter(s): ${unknown.join(', ')}. Known: ${known.length > 0 ? known.join(', ') : 'none'}`);
  }
}

/** Each filter takes one value; which one a repeated parameter meant cannot be guessed. */
function refuseRepeatedParameters(repeated: Record<string, string[]>): void {
  const name = Object.keys(repeated)[0];
  if (name !== undefined) throw new KmsError('ValidationException', `Query parameter '${name}' is given more than once; give each at most once`);
}

/** Parameters given more than once, with every value (the query parser hands them over as arrays; queryOf leaves them out). */
function repeatedParameters(req: Request): Record<string, string[]> {
  return Object.fromEntries(Object.entries(req.query).filter((entry): entry is [string, string[]] => Array.isArray(entry[1]) && entry[1].every((v) => typeof v === 'string')));
}

function queryOf(req: Request): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(req.query)) if (typeof v === 'string') out[k] = v;
  return out;
}
