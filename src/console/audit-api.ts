import { randomUUID } from 'node:crypto';
import express, { type Request, type Response } from 'express';
import type { Logger } from 'pino';
import type { Caller } from '../access/principal';
import { apiCallEvent, type AuditSink } from '../audit/event';
import type { ParsedRecord } from '../audit/format';
import { findChains, verifyChains } from '../audit/chains';
import { parseTime, type QueryFilter, queryChains } from '../audit/query';
import { KmsError } from '../errors';
import type { Services } from '../operations';
import { checkAccountAction } from '../operations/shared/key-resolution';
import { errorResponse } from '../wire/aws-json/error-response';
import type { SigV4Authenticator } from '../wire/aws-json/sigv4-auth';

/** The one permission that opens the trail; in strict mode an identity policy must allow it by name (or "*"). */
export const READ_AUDIT_TRAIL = 'p11kms:ReadAuditTrail';
export const AUDIT_API_PREFIX = '/audit';
const DEFAULT_LIMIT = 200;
const MAX_LIMIT = 1000;
/** Chart buckets: the smallest of these that keeps a range within MAX_BUCKETS bars. */
const BUCKET_SECONDS = [60, 300, 900, 3600, 6 * 3600, 86400, 7 * 86400];
const MAX_BUCKETS = 48;
/** The largest time a Date holds (ECMAScript: ±8.64e15 ms from 1970). */
const MAX_DATE_MS = 8.64e15;

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
  router.get('/verify', (req, res) => void handle(deps, req, res, 'VerifyTrail', () => verifyChains(deps.auditDir, deps.trustedKeys())));
  return router;
}

async function handle(deps: AuditApiDeps, req: Request, res: Response, eventName: string, run: (caller: Caller) => unknown): Promise<void> {
  const requestId = randomUUID();
  const query = queryOf(req);
  let caller: Caller | undefined;
  let region: string | undefined;
  let reply: { status: number; body: string };
  try {
    // A repeated parameter cannot be signed over as one value: refused by name, not as a bad signature.
    refuseRepeatedParameters(req);
    const auth = await deps.authenticator.authenticate({
      method: req.method,
      host: req.headers.host ?? '',
      // Signed over the full path; inside this router req.path lacks the mount point.
      path: req.originalUrl.split('?')[0],
      query,
      headers: req.headers as Record<string, string | undefined>,
      body: Buffer.alloc(0),
    });
    caller = auth.caller;
    region = auth.region;
    // An account-level action like CreateKey: the caller's identity policies decide (kms:* does not match it).
    checkAccountAction(deps.services, { scope: { region, accountId: caller.accountId }, caller, requestId, sourceIp: req.socket.remoteAddress }, READ_AUDIT_TRAIL);
    refuseUnknownParameters(query, eventName === 'LookupEvents' ? LOOKUP_PARAMETERS : []);
    reply = { status: 200, body: JSON.stringify(run(caller)) };
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

interface Bucket {
  start: string;
  calls: number;
  errors: number;
}

/** Newest records first (up to `limit`), with per-operation counts and a timeline over every match. */
function lookup(deps: AuditApiDeps, caller: Caller, req: Request): unknown {
  const q = queryOf(req);
  const filter = filterOf(q);
  const limit = q.limit === undefined ? DEFAULT_LIMIT : /^\d{1,7}$/.test(q.limit) ? Number(q.limit) : NaN;
  if (!(limit >= 1 && limit <= MAX_LIMIT)) {
    throw new KmsError('ValidationException', `1 validation error detected: Value '${q.limit}' at 'limit' failed to satisfy constraint: Member must be between 1 and ${MAX_LIMIT}`);
  }
  const newest: ParsedRecord[] = [];
  const byOperation = new Map<string, { calls: number; errors: number }>();
  const byMinute = new Map<number, { calls: number; errors: number }>();
  let matched = 0;
  // Every process's chain (a cluster keeps one per process), in time order.
  for (const record of queryChains(findChains([deps.auditDir], { required: false }), filter)) {
    if (!visibleTo(record, caller, deps.defaultAccountId)) continue;
    matched++;
    newest.push(record);
    // Trimmed in batches: shifting one record per match would make a long trail quadratic.
    if (newest.length >= 2 * limit) newest.splice(0, newest.length - limit);
    const failed = record.errorCode ? 1 : 0;
    const name = String(record.eventName);
    const op = byOperation.get(name) ?? { calls: 0, errors: 0 };
    op.calls++;
    op.errors += failed;
    byOperation.set(name, op);
    const minute = Math.floor(Date.parse(String(record.eventTime)) / 60_000);
    const m = byMinute.get(minute) ?? { calls: 0, errors: 0 };
    m.calls++;
    m.errors += failed;
    byMinute.set(minute, m);
  }
  return {
    events: newest.slice(-limit).reverse(),
    matched,
    truncated: matched > limit,
    summary: {
      byOperation: [...byOperation].map(([eventName, c]) => ({ eventName, ...c })).sort((a, b) => b.calls - a.calls || a.eventName.localeCompare(b.eventName)),
      timeline: timeline(byMinute, filter, deps.services.clock.now()),
    },
  };
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
  return {
    ...(q.key ? { key: q.key } : {}),
    ...(q.principal ? { principal: q.principal } : {}),
    ...(q.eventName ? { eventName: q.eventName } : {}),
    ...(q.error ? { error: q.error === 'true' ? true : q.error } : {}),
    ...(from !== undefined ? { from } : {}),
    ...(to !== undefined ? { to } : {}),
  };
}

/**
 * CloudTrail delivers a record to the caller's account and to the account owning the key it
 * touched; records of calls that never authenticated belong to no account, and this
 * deployment's own account sees them (failed sign-ins are what an operator looks for).
 */
function visibleTo(r: ParsedRecord, caller: Caller, defaultAccountId: string): boolean {
  const who = (r.userIdentity ?? {}) as { accountId?: string };
  const accounts = [r.recipientAccountId, who.accountId, ...((r.resources ?? []) as Array<{ accountId?: string }>).map((x) => x.accountId)].filter(
    (a): a is string => typeof a === 'string',
  );
  return accounts.length === 0 ? caller.accountId === defaultAccountId : accounts.includes(caller.accountId);
}

function timeline(byMinute: Map<number, { calls: number; errors: number }>, filter: QueryFilter, now: number): { bucketSeconds: number; buckets: Bucket[] } {
  const minutes = [...byMinute.keys()];
  if (minutes.length === 0) return { bucketSeconds: BUCKET_SECONDS[0], buckets: [] };
  const first = filter.from ?? Math.min(...minutes) * 60_000;
  const last = filter.to ?? Math.max(now, Math.max(...minutes) * 60_000);
  const span = Math.max(60, (last - first) / 1000);
  // Beyond 48 weeks, whole days: a range of centuries still makes MAX_BUCKETS bars, not millions.
  const bucketSeconds = BUCKET_SECONDS.find((s) => span / s <= MAX_BUCKETS) ?? Math.ceil(span / MAX_BUCKETS / 86400) * 86400;
  const size = bucketSeconds * 1000;
  // Aligned to the bucket size, but never before the earliest time a Date holds.
  const start = Math.max(Math.floor(first / size) * size, -MAX_DATE_MS);
  const buckets: Bucket[] = [];
  for (let t = start; t <= last; t += size) buckets.push({ start: new Date(t).toISOString(), calls: 0, errors: 0 });
  for (const [minute, c] of byMinute) {
    const i = Math.floor((minute * 60_000 - start) / size);
    if (i < 0 || i >= buckets.length) continue;
    buckets[i].calls += c.calls;
    buckets[i].errors += c.errors;
  }
  return { bucketSeconds, buckets };
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

function refuseRepeatedParameters(req: Request): void {
  const raw = req.originalUrl.split('?').slice(1).join('?');
  const seen = new Set<string>();
  for (const name of new URLSearchParams(raw).keys()) {
    if (seen.has(name)) throw new KmsError('ValidationException', `Query parameter '${name}' is given more than once; give each at most once`);
    seen.add(name);
  }
}

function queryOf(req: Request): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(req.query)) if (typeof v === 'string') out[k] = v;
  return out;
}
