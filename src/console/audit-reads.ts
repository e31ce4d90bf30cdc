import type { ParsedRecord } from '../audit/format';
import { findChains, verifyChains } from '../audit/chains';
import { type QueryFilter, queryChains } from '../audit/query';
import type { VerifyReport } from '../audit/verify';

/**
 * The audit endpoint's reads of the trail (audit-read-thread.ts runs them off the event loop):
 * they read every file of every chain, seconds on a long trail.
 */

/** Chart buckets: the smallest of these that keeps a range within MAX_BUCKETS bars. */
const BUCKET_SECONDS = [60, 300, 900, 3600, 6 * 3600, 86400, 7 * 86400];
const MAX_BUCKETS = 48;
/** The largest time a Date holds (ECMAScript: ±8.64e15 ms from 1970). */
export const MAX_DATE_MS = 8.64e15;

export interface LookupRequest {
  auditDir: string;
  /** The caller's account: it sees its own records only. */
  callerAccountId: string;
  /** Records of calls that never authenticated belong to no account; this deployment's own account sees them. */
  defaultAccountId: string;
  filter: QueryFilter;
  limit: number;
  /** The service clock's now (ms), where the timeline of an open range ends. */
  now: number;
}

export interface VerifyRequest {
  auditDir: string;
  trustedKeys: readonly string[];
}

interface Bucket {
  start: string;
  calls: number;
  errors: number;
}

/** Newest records first (up to `limit`), with per-operation counts and a timeline over every match. */
export function lookupEvents(request: LookupRequest): unknown {
  const newest: ParsedRecord[] = [];
  const byOperation = new Map<string, { calls: number; errors: number }>();
  const byMinute = new Map<number, { calls: number; errors: number }>();
  let matched = 0;
  // Every process's chain (a cluster keeps one per process), in time order.
  for (const record of queryChains(findChains([request.auditDir], { required: false }), request.filter)) {
    if (!visibleTo(record, request.callerAccountId, request.defaultAccountId)) continue;
    matched++;
    newest.push(record);
    // Trimmed in batches: shifting one record per match would make a long trail quadratic.
    if (newest.length >= 2 * request.limit) newest.splice(0, newest.length - request.limit);
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
    events: newest.slice(-request.limit).reverse(),
    matched,
    truncated: matched > request.limit,
    summary: {
      byOperation: [...byOperation].map(([eventName, c]) => ({ eventName, ...c })).sort((a, b) => b.calls - a.calls || a.eventName.localeCompare(b.eventName)),
      timeline: timeline(byMinute, request.filter, request.now),
    },
  };
}

/** `audit verify`'s check of every chain under the audit directory. */
export function verifyTrailChains(request: VerifyRequest): VerifyReport {
  return verifyChains(request.auditDir, request.trustedKeys);
}

/**
 * CloudTrail delivers a record to the caller's account and to the account owning the key it
 * touched; records of calls that never authenticated belong to no account, and this
 * deployment's own account sees them (failed sign-ins are what an operator looks for).
 */
function visibleTo(r: ParsedRecord, callerAccountId: string, defaultAccountId: string): boolean {
  const who = (r.userIdentity ?? {}) as { accountId?: string };
  const accounts = [r.recipientAccountId, who.accountId, ...((r.resources ?? []) as Array<{ accountId?: string }>).map((x) => x.accountId)].filter(
    (a): a is string => typeof a === 'string',
  );
  return accounts.length === 0 ? callerAccountId === defaultAccountId : accounts.includes(callerAccountId);
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
