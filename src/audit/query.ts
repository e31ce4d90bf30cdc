import * as path from 'node:path';
import { leadingRecoveryRecords, listTrailFiles, type NamedFile, openRecord, type ParsedRecord, readLines } from './format';

export interface QueryFilter {
  /** Key id, key ARN, or alias name as the caller wrote it. */
  key?: string;
  /** Principal ARN, access key id, principal id or account id. */
  principal?: string;
  eventName?: string;
  /** true: only failed calls; false: only calls that succeeded; a string: only that error code. */
  error?: boolean | string;
  from?: number;
  to?: number;
}

/**
 * Reads records in trail order and yields those matching every given filter, a line at a
 * time (a trail of any size streams). It reads what is there; run `audit verify` to know it
 * has not been altered.
 */
export function* queryTrail(dir: string, filter: QueryFilter): Generator<ParsedRecord> {
  const files = listTrailFiles(dir);
  const torn = tornTails(dir, files);
  for (const [i, f] of files.entries()) {
    // Every record of a file was made before the next file was opened. The opening time of a
    // file says nothing about `to`: a record made just before a rotation is written after it,
    // so a file is passed over only when its first record is later than `to`.
    const next = files[i + 1];
    if (filter.from !== undefined && next && next.time < filter.from) continue;
    let first = true;
    for (const l of readLines(path.join(dir, f.name))) {
      if (l.offset >= (torn.get(f.name) ?? Infinity)) break;
      const opened = openRecord(l.text);
      const record = 'error' in opened ? undefined : opened.record;
      if (!record) continue;
      if (first && filter.to !== undefined && Date.parse(String(record.eventTime)) > filter.to) break;
      first = false;
      if (matches(record, filter)) yield record;
    }
  }
}

/**
 * Where each file's torn tail starts, as the recovery records that open later files describe
 * it: after a write failure it can hold whole records, of requests that were refused; they
 * are evidence, outside the chain (as verify treats them), not events.
 */
function tornTails(dir: string, files: readonly NamedFile[]): Map<string, number> {
  const torn = new Map<string, number>();
  for (const f of files) {
    for (const { record } of leadingRecoveryRecords(path.join(dir, f.name))) {
      const extra = record.additionalEventData as Record<string, unknown> | undefined;
      if (typeof extra?.tornFile === 'string') torn.set(extra.tornFile, Number(extra.tornOffset));
    }
  }
  return torn;
}

/**
 * Every chain's matching records, merged in event-time order (each chain is already in
 * order): one record per chain is held at a time, so several chains stream too.
 */
export function queryChains(chains: readonly string[], filter: QueryFilter): Iterable<ParsedRecord> {
  if (chains.length === 1) return queryTrail(chains[0], filter);
  return mergeByTime(chains.map((chain) => queryTrail(chain, filter)));
}

function* mergeByTime(sources: Array<Iterator<ParsedRecord>>): Generator<ParsedRecord> {
  const heads = sources.map((it) => ({ it, next: it.next() }));
  for (;;) {
    let pick: (typeof heads)[number] | undefined;
    let pickTime = Infinity;
    for (const h of heads) {
      if (h.next.done) continue;
      const time = Date.parse(String(h.next.value.eventTime));
      // Ties (and unparsable times) go to the chain named first, as a stable sort would.
      if (pick === undefined || time < pickTime) {
        pick = h;
        pickTime = time;
      }
    }
    if (!pick) return;
    yield pick.next.value as ParsedRecord;
    pick.next = pick.it.next();
  }
}

function matches(r: ParsedRecord, f: QueryFilter): boolean {
  const time = Date.parse(String(r.eventTime));
  if (f.from !== undefined && time < f.from) return false;
  if (f.to !== undefined && time > f.to) return false;
  if (f.eventName && r.eventName !== f.eventName) return false;
  if (f.error === true && !r.errorCode) return false;
  if (f.error === false && r.errorCode) return false;
  if (typeof f.error === 'string' && r.errorCode !== f.error) return false;
  if (f.principal) {
    const who = (r.userIdentity ?? {}) as Record<string, unknown>;
    if (![who.arn, who.accessKeyId, who.principalId, who.accountId].includes(f.principal)) return false;
  }
  if (f.key && !mentionsKey(r, f.key)) return false;
  return true;
}

function mentionsKey(r: ParsedRecord, key: string): boolean {
  const resources = (r.resources ?? []) as Array<{ ARN?: string }>;
  if (resources.some((res) => res.ARN === key || res.ARN?.endsWith(`:key/${key}`))) return true;
  const params = (r.requestParameters ?? {}) as Record<string, unknown>;
  return ['keyId', 'targetKeyId', 'sourceKeyId', 'destinationKeyId'].some((m) => params[m] === key);
}

/** Accepts an ISO 8601 time, or a duration ago: 30m, 12h, 7d. */
export function parseTime(text: string): number {
  const ago = /^(\d+)([mhd])$/.exec(text);
  if (ago) return Date.now() - Number(ago[1]) * { m: 60_000, h: 3_600_000, d: 86_400_000 }[ago[2] as 'm' | 'h' | 'd'];
  const t = Date.parse(text);
  if (Number.isNaN(t)) throw new Error(`not a time: '${text}' (use ISO 8601, e.g. 2024-05-01T00:00:00Z, or 30m, 12h, 7d ago)`);
  return t;
}

/** Spellings of yes and no that are no error code: taken as one, they would match nothing, silently. */
const BOOLEAN_LIKE = /^(true|false|yes|no|on|off|1|0)$/i;

/**
 * The error filter as a person writes it: `true` (failed calls), `false` (calls that
 * succeeded) or an error code such as AccessDeniedException. Another spelling of yes or no
 * (`False`, `0`, `no`) is refused rather than searched for as an error code no call has.
 */
export function parseErrorFilter(text: string): boolean | string {
  if (text === 'true') return true;
  if (text === 'false') return false;
  if (BOOLEAN_LIKE.test(text)) throw new Error(`'${text}' is neither true, false nor an error code (write true for failed calls, false for calls that succeeded)`);
  return text;
}

/** One line per record for people: time, event, who, key, outcome. */
export function formatRow(r: ParsedRecord): string {
  const who = (r.userIdentity ?? {}) as Record<string, unknown>;
  const resources = (r.resources ?? []) as Array<{ ARN?: string }>;
  const principal = String(who.arn ?? who.invokedBy ?? (who.accessKeyId ? `unauthenticated ${String(who.accessKeyId)}` : 'unknown'));
  const keys = resources.map((res) => res.ARN).join(',') || '-';
  return [r.eventTime, r.eventName, principal, String(r.sourceIPAddress ?? '-'), keys, r.errorCode ?? 'OK', r.requestID ?? '-'].join('\t');
}
