import { createPublicKey, verify as verifySignature } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import {
  type DigestBody,
  type FileCoverage,
  fingerprintOf,
  GENESIS_HASH,
  leadingRecoveryRecords,
  listDigestFiles,
  listTrailFiles,
  type NamedFile,
  openRecord,
  type ParsedRecord,
  readDigest,
  RECOVERY_EVENT,
  sha256Hex,
  signedBytesOf,
  splitLines,
} from './format';

export interface Finding {
  severity: 'error' | 'notice';
  file?: string;
  line?: number;
  sequence?: number;
  message: string;
}

export interface VerifyReport {
  ok: boolean;
  findings: Finding[];
  files: number;
  records: number;
  digests: number;
  /** The newest validly signed digest and the SHA-256 of its bytes: what to pass to --anchor next time. */
  latestDigest?: { name: string; sha256: string };
}

export interface VerifyOptions {
  dir: string;
  /** PEMs of the signing keys' public halves (every version to accept); nothing else is trusted. */
  trustedKeys: readonly string[];
  from?: number;
  to?: number;
  /** "Now" for the unsigned tail's time bound; default the clock. */
  now?: number;
  /**
   * Digests an earlier verification saw (name and SHA-256 of the file): each must still be
   * there, unchanged. Removing the newest files and digests together leaves a shorter trail
   * that checks out on its own; an anchor kept outside the directory shows it.
   */
  anchors?: ReadonlyArray<{ name: string; sha256: string }>;
}

/** Slack for the tail's time bound: event times are whole seconds, and signing takes a moment. */
const TAIL_GRACE_MS = 5_000;

/** What the chain check keeps of a record (not the whole event: a trail may hold millions). */
type ChainLink = Pick<ParsedRecord, 'sequenceNumber' | 'previousRecordHash' | 'recordHash' | 'eventTime'>;

interface Line {
  file: string;
  line: number;
  offset: number;
  record?: ChainLink;
  error?: string;
  partial?: { sequenceNumber: number };
}

/**
 * Checks a trail with nothing but the public key: each digest's signature and its link to
 * the previous digest, each file against what the digests signed, and each record's own
 * hash, sequence number and link to the record before it. Findings name the file, line and
 * sequence number of the damage and what kind it is (changed, removed, reordered, inserted,
 * truncated).
 */
export function verifyTrail(options: VerifyOptions): VerifyReport {
  const { dir } = options;
  const findings: Finding[] = [];
  const error = (f: Omit<Finding, 'severity'>) => findings.push({ severity: 'error', ...f });
  const notice = (f: Omit<Finding, 'severity'>) => findings.push({ severity: 'notice', ...f });
  const trusted = new Map(options.trustedKeys.map((pem) => [fingerprintOf(pem), createPublicKey(pem)]));

  // Digests: signature, numbering and the chain of digests.
  const coverage = new Map<string, Array<{ digest: string; cov: FileCoverage }>>();
  let latest: { name: string; body: DigestBody; sha256: string } | undefined;
  let previous: { name: string; raw: Buffer; sequence: number } | undefined;
  const digestFiles = listDigestFiles(dir);
  for (const d of digestFiles) {
    let parsed: ReturnType<typeof readDigest>;
    try {
      parsed = readDigest(dir, d.name);
    } catch (err) {
      error({ file: d.name, message: `digest is unreadable (${(err as Error).message}): it was changed or replaced` });
      previous = { name: d.name, raw: fs.readFileSync(path.join(dir, d.name)), sequence: d.sequence };
      continue;
    }
    const { raw, body, signature } = parsed;
    const key = trusted.get(body.publicKeyFingerprint);
    let signed = false;
    try {
      signed = key !== undefined && verifySignature('sha256', signedBytesOf(body), { key, dsaEncoding: 'der' }, Buffer.from(signature, 'base64'));
    } catch {
      signed = false;
    }
    if (!key) {
      error({
        file: d.name,
        message: `digest is signed by a key not in the trust list (version ${body.signingKeyVersion ?? 1}, fingerprint ${String(body.publicKeyFingerprint).slice(0, 16)}…): it was replaced, or verify was not given that key version's public key`,
      });
    } else if (!signed) {
      error({ file: d.name, message: 'digest signature is invalid: the digest was changed or replaced' });
    }
    if (body.digestSequence !== d.sequence) error({ file: d.name, message: `digest says it is number ${body.digestSequence} but is stored as number ${d.sequence}: it was replaced` });
    const expected = (previous?.sequence ?? 0) + 1;
    if (d.sequence !== expected) error({ file: d.name, message: `digest(s) number ${expected}–${d.sequence - 1} are missing (removed)` });
    if (previous && (body.previousDigestFile !== previous.name || body.previousDigestSha256 !== sha256Hex(previous.raw))) {
      error({ file: d.name, message: `digest does not chain to ${previous.name}: one of the two was changed or replaced` });
    } else if (!previous && body.previousDigestFile !== null) {
      error({ file: d.name, message: `digest chains to ${body.previousDigestFile}, which is missing (removed)` });
    }
    previous = { name: d.name, raw, sequence: d.sequence };
    if (!signed) continue;
    latest = { name: d.name, body, sha256: sha256Hex(raw) };
    for (const cov of body.files) {
      const list = coverage.get(cov.name) ?? [];
      list.push({ digest: d.name, cov });
      coverage.set(cov.name, list);
    }
  }

  // Files: which ones are checked, and are any missing?
  const allFiles = listTrailFiles(dir);
  const present = new Set(allFiles.map((f) => f.name));
  for (const name of coverage.keys()) {
    if (!present.has(name)) error({ file: name, message: `trail file is missing (removed); digest ${coverage.get(name)!.at(-1)!.digest} vouches for it` });
  }
  allFiles.forEach((f, i) => {
    const expected = (allFiles[i - 1]?.sequence ?? 0) + 1;
    if (f.sequence !== expected) error({ file: f.name, message: `trail file(s) number ${expected}–${f.sequence - 1} are missing (removed)` });
  });
  const selected = selectFiles(allFiles, options.from, options.to);

  // One file in memory at a time (a trail is many files of up to auditMaxFileBytes): each is
  // checked against its digests as it is read, and only what the chain check needs stays.
  // Recovery records acknowledge torn tails wherever they are.
  const lines: Line[] = [];
  const acks = new Map<string, { offset: number; bytes: number; sha256: string; by: Line; writeFailure?: string }>();
  const tails = new Map<string, { offset: number }>();
  const sizes = new Map<string, number>();
  const lineCounts = new Map<string, number>();
  for (const f of selected) {
    const data = fs.readFileSync(path.join(dir, f.name));
    sizes.set(f.name, data.length);
    const split = splitLines(data);
    lineCounts.set(f.name, split.lines.length);
    if (split.tail) tails.set(f.name, { offset: split.tail.offset });
    const fileLines: Line[] = [];
    for (const l of split.lines) {
      const opened = openRecord(l.text);
      const entry: Line = { file: f.name, line: l.line, offset: l.offset };
      if ('error' in opened) {
        entry.error = opened.error;
        if (typeof opened.record?.sequenceNumber === 'number') entry.partial = { sequenceNumber: opened.record.sequenceNumber };
      } else {
        const r = opened.record;
        entry.record = { sequenceNumber: r.sequenceNumber, previousRecordHash: r.previousRecordHash, recordHash: r.recordHash, eventTime: r.eventTime };
        const extra = r.additionalEventData as Record<string, unknown> | undefined;
        const writeFailure = typeof extra?.writeFailure === 'string' ? extra.writeFailure : undefined;
        if (r.eventName === RECOVERY_EVENT && extra && typeof extra.tornFile === 'string') {
          acks.set(extra.tornFile, { offset: Number(extra.tornOffset), bytes: Number(extra.tornBytes), sha256: String(extra.tornSha256), by: entry, writeFailure });
        } else if (r.eventName === RECOVERY_EVENT && writeFailure) {
          notice({ file: f.name, line: l.line, sequence: r.sequenceNumber, message: `the trail could not be written (${writeFailure}) and was written again without a restart: requests in between were refused, no byte of their records reached the trail` });
        }
      }
      fileLines.push(entry);
      lines.push(entry);
    }
    checkAgainstDigests(f.name, data, fileLines, tails.has(f.name), coverage.get(f.name) ?? [], error);
  }
  // A range (--to) can end in a file whose torn tail a recovery record after the range
  // describes: the records a later file opens with are read for that, and nothing else of it.
  const selectedNames = new Set(selected.map((f) => f.name));
  for (const f of allFiles.slice(allFiles.indexOf(selected.at(-1)!) + 1)) {
    if (selected.length === 0) break;
    for (const l of leadingRecoveryRecords(path.join(dir, f.name))) {
      const extra = l.record.additionalEventData as Record<string, unknown> | undefined;
      if (typeof extra?.tornFile !== 'string' || !selectedNames.has(extra.tornFile) || acks.has(extra.tornFile)) continue;
      const by: Line = { file: f.name, line: l.line, offset: l.offset, record: { sequenceNumber: l.record.sequenceNumber, previousRecordHash: l.record.previousRecordHash, recordHash: l.record.recordHash, eventTime: l.record.eventTime } };
      acks.set(extra.tornFile, { offset: Number(extra.tornOffset), bytes: Number(extra.tornBytes), sha256: String(extra.tornSha256), by, writeFailure: typeof extra.writeFailure === 'string' ? extra.writeFailure : undefined });
    }
  }

  // Torn tails: acceptable only where a later recovery record describes exactly those bytes.
  const tornFrom = new Map<string, number>();
  for (const f of selected) {
    const size = sizes.get(f.name)!;
    const ack = acks.get(f.name);
    const tail = tails.get(f.name);
    if (ack) {
      const torn = ack.offset <= size ? readRange(path.join(dir, f.name), ack.offset, size) : Buffer.alloc(0);
      if (ack.offset > size || torn.length !== ack.bytes || sha256Hex(torn) !== ack.sha256) {
        error({ file: f.name, message: `the torn tail that recovery record ${ack.by.record!.sequenceNumber} (${ack.by.file} line ${ack.by.line}) describes does not match the file` });
      } else {
        tornFrom.set(f.name, ack.offset);
        const by = `sequence ${ack.by.record!.sequenceNumber} (${ack.by.file} line ${ack.by.line})`;
        notice({
          file: f.name,
          message: ack.writeFailure
            ? `${ack.bytes} bytes from offset ${ack.offset} are what reached the file of a write that failed (${ack.writeFailure}), for requests that were refused; kept as evidence and acknowledged by ${by}, written once the trail could be written again without a restart`
            : `${ack.bytes} bytes from offset ${ack.offset} are a record torn by a crash, kept as evidence and acknowledged by ${by}`,
        });
      }
    } else if (tail) {
      const last = f === selected.at(-1) && f === allFiles.at(-1);
      const where = { file: f.name, line: lineCounts.get(f.name)! + 1 };
      if (last) notice({ ...where, message: `the active file ends with an incomplete record at byte ${tail.offset}: the service crashed and has not restarted yet, or the file was truncated` });
      else error({ ...where, message: `record is incomplete: the file was truncated at byte ${size}` });
      tornFrom.set(f.name, tail.offset);
    }
  }

  // The chain of records.
  const chain = lines.filter((l) => !(tornFrom.has(l.file) && l.offset >= tornFrom.get(l.file)!));
  let expectedSeq: number | undefined = options.from !== undefined && selected[0] !== allFiles[0] ? undefined : 1;
  let expectedPrev: string | undefined = expectedSeq === 1 ? GENESIS_HASH : undefined;
  let records = 0;
  const at = (l: Line) => ({ file: l.file, line: l.line, sequence: l.record?.sequenceNumber ?? l.partial?.sequenceNumber });
  for (let i = 0; i < chain.length; i++) {
    const l = chain[i];
    if (!l.record) {
      error({ ...at(l), message: `record ${l.error}` });
      if (expectedSeq !== undefined) expectedSeq++;
      expectedPrev = undefined;
      continue;
    }
    records++;
    const r = l.record;
    const next = nextRecordOf(chain, i);
    const advance = () => {
      expectedSeq = r.sequenceNumber + 1;
      expectedPrev = r.recordHash;
    };
    if (expectedSeq === undefined || (r.sequenceNumber === expectedSeq && (expectedPrev === undefined || r.previousRecordHash === expectedPrev))) {
      advance();
      continue;
    }
    const nextFits = next !== undefined && next.sequenceNumber === expectedSeq && (expectedPrev === undefined || next.previousRecordHash === expectedPrev);
    if (r.sequenceNumber > expectedSeq && nextFits && next!.recordHash === r.previousRecordHash) {
      error({ ...at(l), message: `records ${expectedSeq} and ${r.sequenceNumber} are in the wrong order (this line and the next were swapped)` });
      i++;
      records++;
      advance();
    } else if (nextFits) {
      error({ ...at(l), message: `record was inserted: the records around it chain to each other, not to it` });
    } else if (r.sequenceNumber > expectedSeq) {
      const missing = r.sequenceNumber - expectedSeq === 1 ? `record ${expectedSeq} is` : `records ${expectedSeq}–${r.sequenceNumber - 1} are`;
      error({ ...at(l), message: `${missing} missing before this line (removed)` });
      advance();
    } else if (r.sequenceNumber < expectedSeq) {
      error({ ...at(l), message: `record is out of place: sequence ${r.sequenceNumber} after ${expectedSeq - 1} (inserted or reordered)` });
    } else {
      const before = chain[i - 1];
      error({
        ...(before ? at(before) : at(l)),
        message: `record was replaced: the record after it (${l.file} line ${l.line}) chained to a different record`,
      });
      advance();
    }
  }

  // Nothing signed may be missing at the end, and say what is not signed yet.
  const head = latest?.body.chainHead;
  if (head && (options.to === undefined || selected.at(-1) === allFiles.at(-1))) {
    const signedHead = head.sequenceNumber === 0 || chain.some((l) => l.record?.sequenceNumber === head.sequenceNumber && l.record.recordHash === head.recordHash);
    if (!signedHead) {
      const last = chain.filter((l) => l.record).at(-1);
      error({ ...(last ? at(last) : {}), message: `records up to sequence ${head.sequenceNumber}, signed in digest ${latest!.name}, are missing after this point (removed or truncated)` });
    } else {
      const unsigned = chain.filter((l) => l.record && l.record.sequenceNumber > head.sequenceNumber);
      if (unsigned.length > 0) {
        const overLong = unsignedTailProblem(unsigned.map((l) => l.record!), latest!.body, options.now ?? Date.now());
        (overLong ? error : notice)({
          file: unsigned[0].file,
          line: unsigned[0].line,
          message: `${unsigned.length} record(s) from sequence ${unsigned[0].record!.sequenceNumber} are chained but not yet covered by a signed digest${overLong ? `, ${overLong}: the service stopped without signing them, or later digests were removed` : ' (within the bound; the next digest signs them)'}`,
        });
      }
    }
  }
  if (digestFiles.length === 0) error({ message: 'no digest found: nothing in this trail is signed' });
  for (const anchor of options.anchors ?? []) {
    if (!digestFiles.some((d) => d.name === anchor.name)) {
      error({ file: anchor.name, message: 'digest named by --anchor is missing: digests (and the records they signed) were removed from the end, or the anchor belongs to another trail' });
    } else if (sha256Hex(fs.readFileSync(path.join(dir, anchor.name))) !== anchor.sha256.toLowerCase()) {
      error({ file: anchor.name, message: `digest differs from the one --anchor names (sha256 ${anchor.sha256.slice(0, 16)}…): it was replaced` });
    }
  }

  return {
    ok: !findings.some((f) => f.severity === 'error'),
    findings,
    files: selected.length,
    records,
    digests: digestFiles.length,
    ...(latest ? { latestDigest: { name: latest.name, sha256: latest.sha256 } } : {}),
  };
}

/**
 * What makes an unsigned tail longer than the bound the latest digest states (by count, or by
 * the age of its oldest record); undefined when it is within the bound or no bound is stated.
 */
function unsignedTailProblem(records: readonly ChainLink[], digest: DigestBody, now: number): string | undefined {
  const bound = digest.unsignedTailBound;
  if (!bound) return undefined;
  if (records.length > bound.maxRecords) return `more than the ${bound.maxRecords} records the trail allows unsigned`;
  const oldest = Date.parse(String(records[0].eventTime));
  if (Number.isFinite(oldest) && now - oldest > bound.maxSeconds * 1000 + TAIL_GRACE_MS) {
    return `the oldest is ${Math.floor((now - oldest) / 1000)} s old, more than the ${bound.maxSeconds} s the trail allows unsigned`;
  }
  return undefined;
}

/** The next intact record after chain[i], looked up without copying the rest of the chain. */
function nextRecordOf(chain: readonly Line[], i: number): ChainLink | undefined {
  for (let j = i + 1; j < chain.length; j++) if (chain[j].record) return chain[j].record;
  return undefined;
}

/** A file against every digest that vouched for it: size, prefix hash, nothing appended after closing. */
function checkAgainstDigests(
  name: string,
  data: Buffer,
  fileLines: readonly Line[],
  torn: boolean,
  covered: ReadonlyArray<{ digest: string; cov: FileCoverage }>,
  error: (f: Omit<Finding, 'severity'>) => void,
): void {
  for (const { digest, cov } of covered) {
    if (data.length < cov.bytes) {
      error({
        file: name,
        line: torn ? fileLines.length + 1 : fileLines.length,
        message: `file is shorter than digest ${digest} signed (${data.length} of ${cov.bytes} bytes, records up to sequence ${cov.lastSequence ?? '–'}): truncated or records removed`,
      });
      return;
    }
    if (sha256Hex(data.subarray(0, cov.bytes)) !== cov.sha256) {
      error({ file: name, message: `content differs from the ${cov.bytes} bytes digest ${digest} signed (see the record-level findings for where)` });
      return;
    }
    if (cov.closed && data.length > cov.bytes) {
      const added = fileLines.find((l) => l.offset >= cov.bytes);
      error({ file: name, line: added?.line, message: `${data.length - cov.bytes} bytes were appended after the file was closed (digest ${digest})` });
      return;
    }
  }
}

function readRange(file: string, from: number, to: number): Buffer {
  const out = Buffer.alloc(to - from);
  const fd = fs.openSync(file, 'r');
  try {
    let read = 0;
    while (read < out.length) {
      const n = fs.readSync(fd, out, read, out.length - read, from + read);
      if (n === 0) break;
      read += n;
    }
    return out.subarray(0, read);
  } finally {
    fs.closeSync(fd);
  }
}

/** Files whose time span (from their opening to the next file's) meets [from, to]. */
function selectFiles(files: NamedFile[], from: number | undefined, to: number | undefined): NamedFile[] {
  return files.filter((f, i) => {
    const end = files[i + 1]?.time ?? Infinity;
    return (from === undefined || end >= from) && (to === undefined || f.time <= to);
  });
}

export function formatFinding(f: Finding): string {
  const where = [f.file, f.line !== undefined ? `line ${f.line}` : undefined, f.sequence !== undefined ? `sequence ${f.sequence}` : undefined].filter(Boolean).join(' ');
  return `${f.severity === 'error' ? 'FAIL' : 'NOTE'} ${where ? `${where}: ` : ''}${f.message}`;
}
