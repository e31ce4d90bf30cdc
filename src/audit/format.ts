import { createPublicKey, hash } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';

/**
 * The on-disk format shared by the writer, `audit verify` and `audit query`.
 *
 * A trail file is JSON Lines. Each line is a CloudTrail event followed by three integrity
 * members: sequenceNumber (1, 2, 3… across all files), previousRecordHash (recordHash of
 * the record before it, GENESIS_HASH for the first) and, last, recordHash: SHA-256 (hex)
 * of the line's UTF-8 bytes up to that member with `}` appended, i.e. the record as it
 * was before recordHash was added.
 */
export const GENESIS_HASH = '0'.repeat(64);
export const PUBLIC_KEY_FILE = 'audit-signing-public-key.pem';
/** Every version of the signing key's public half, kept for verifying old digests. */
export const publicKeyFileOf = (version: number): string => `audit-signing-public-key-v${version}.pem`;
const PUBLIC_KEY_FILES = /^audit-signing-public-key(-.+)?\.pem$/;

/** The public key files in a trail directory (`audit verify`'s default trust list). */
export function listPublicKeyFiles(dir: string): string[] {
  return fs.existsSync(dir) ? fs.readdirSync(dir).filter((n) => PUBLIC_KEY_FILES.test(n)).sort() : [];
}

/** SHA-256 (hex) of a public key's SubjectPublicKeyInfo (DER): how digests name their key. */
export function fingerprintOf(publicKeyPem: string): string {
  return sha256Hex(createPublicKey(publicKeyPem).export({ format: 'der', type: 'spki' }));
}
export const SIGNATURE_ALGORITHM = 'ECDSA_P256_SHA256';
export const RECOVERY_EVENT = 'AuditTrailRecovered';

const TRAIL_FILE = /^trail-(\d{6})-(\d{8}T\d{6}Z)\.jsonl$/;
const DIGEST_FILE = /^digest-(\d{6})-(\d{8}T\d{6}Z)\.json$/;
const RECORD_HASH_SUFFIX = /,"recordHash":"([0-9a-f]{64})"\}$/;

export function sha256Hex(data: Buffer | string): string {
  // One-shot: no Hash object per record (node ≥ 20.12).
  return hash('sha256', data, 'hex');
}

/** 20240131T235959Z: sortable, and safe in file names everywhere. */
export function compactTime(ms: number): string {
  return new Date(ms).toISOString().replace(/[-:]/g, '').replace(/\.\d{3}Z$/, 'Z');
}

export function parseCompactTime(text: string): number {
  const m = /^(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})Z$/.exec(text);
  return m ? Date.UTC(+m[1], +m[2] - 1, +m[3], +m[4], +m[5], +m[6]) : NaN;
}

export function trailFileName(sequence: number, openedAt: number): string {
  return `trail-${String(sequence).padStart(6, '0')}-${compactTime(openedAt)}.jsonl`;
}

export function digestFileName(sequence: number, at: number): string {
  return `digest-${String(sequence).padStart(6, '0')}-${compactTime(at)}.json`;
}

export interface NamedFile {
  name: string;
  sequence: number;
  time: number;
}

function listMatching(dir: string, pattern: RegExp): NamedFile[] {
  if (!fs.existsSync(dir)) return [];
  return fs
    .readdirSync(dir)
    .map((name) => ({ name, m: pattern.exec(name) }))
    .filter((f): f is { name: string; m: RegExpExecArray } => f.m !== null)
    .map(({ name, m }) => ({ name, sequence: Number(m[1]), time: parseCompactTime(m[2]) }))
    .sort((a, b) => a.sequence - b.sequence || a.name.localeCompare(b.name));
}

export const listTrailFiles = (dir: string): NamedFile[] => listMatching(dir, TRAIL_FILE);
export const listDigestFiles = (dir: string): NamedFile[] => listMatching(dir, DIGEST_FILE);

export interface Integrity {
  sequenceNumber: number;
  previousRecordHash: string;
}

/**
 * Appends the integrity members to an event (after `writer`, the writing process's name in
 * a trail shared by several, when given); returns the line (with its newline) and its hash.
 */
export function sealRecord(event: object, integrity: Integrity, writer?: string): { line: string; hash: string } {
  // The text JSON.stringify({ ...event, p11kmsProcess: writer, ...integrity }) makes, without copying the event.
  const json = JSON.stringify(event);
  const named = writer ? `"p11kmsProcess":${JSON.stringify(writer)},` : '';
  const body = `${json.length > 2 ? `${json.slice(0, -1)},` : '{'}${named}"sequenceNumber":${integrity.sequenceNumber},"previousRecordHash":${JSON.stringify(integrity.previousRecordHash)}}`;
  const hash = sha256Hex(body);
  return { line: `${body.slice(0, -1)},"recordHash":"${hash}"}\n`, hash };
}

export type ParsedRecord = Record<string, unknown> & Integrity & { recordHash: string };

/** Parses one line; `error` says why it is not an intact record. */
export function openRecord(line: string): { record: ParsedRecord } | { error: string; record?: Partial<ParsedRecord> } {
  let parsed: Record<string, unknown>;
  try {
    parsed = JSON.parse(line) as Record<string, unknown>;
  } catch {
    return { error: 'is not valid JSON' };
  }
  const suffix = RECORD_HASH_SUFFIX.exec(line);
  if (!suffix || typeof parsed.sequenceNumber !== 'number' || typeof parsed.previousRecordHash !== 'string') {
    return { error: 'lacks its integrity members', record: parsed as Partial<ParsedRecord> };
  }
  const body = `${line.slice(0, suffix.index)}}`;
  if (sha256Hex(body) !== suffix[1]) return { error: 'does not match its own recordHash (its content was changed)', record: parsed as Partial<ParsedRecord> };
  return { record: parsed as ParsedRecord };
}

export interface ScannedLine {
  /** 1-based line number. */
  line: number;
  offset: number;
  text: string;
}

/**
 * Splits a file into complete lines plus whatever follows the last newline (a write torn
 * by a crash, or a truncation).
 */
export function splitLines(data: Buffer): { lines: ScannedLine[]; tail: { offset: number; bytes: Buffer } | undefined } {
  const lines: ScannedLine[] = [];
  let offset = 0;
  let n = 0;
  for (;;) {
    const nl = data.indexOf(0x0a, offset);
    if (nl < 0) break;
    lines.push({ line: ++n, offset, text: data.subarray(offset, nl).toString('utf8') });
    offset = nl + 1;
  }
  return { lines, tail: offset < data.length ? { offset, bytes: data.subarray(offset) } : undefined };
}

/**
 * The complete lines of a file, read a chunk at a time so that memory holds one chunk and
 * one line, whatever the file's size. Bytes after the last newline (a torn write) are left out.
 */
export function* readLines(file: string, chunkBytes = 1 << 20): Generator<ScannedLine> {
  const fd = fs.openSync(file, 'r');
  try {
    const chunk = Buffer.alloc(chunkBytes);
    let carry: Buffer = Buffer.alloc(0);
    let position = 0;
    let line = 0;
    for (;;) {
      const n = fs.readSync(fd, chunk, 0, chunk.length, position);
      if (n === 0) return;
      const data = carry.length > 0 ? Buffer.concat([carry, chunk.subarray(0, n)]) : chunk.subarray(0, n);
      const base = position - carry.length;
      position += n;
      let start = 0;
      for (let nl = data.indexOf(0x0a); nl >= 0; nl = data.indexOf(0x0a, start)) {
        yield { line: ++line, offset: base + start, text: data.subarray(start, nl).toString('utf8') };
        start = nl + 1;
      }
      // Copied: the chunk buffer is overwritten by the next read.
      carry = Buffer.from(data.subarray(start));
    }
  } finally {
    fs.closeSync(fd);
  }
}

/** What a digest says about one trail file. */
export interface FileCoverage {
  name: string;
  /** The digest covers bytes [0, bytes) of the file; `sha256` is their hash. */
  bytes: number;
  sha256: string;
  recordCount: number;
  firstSequence: number | null;
  lastSequence: number | null;
  lastRecordHash: string | null;
  /** No byte will ever be appended to a closed file. */
  closed: boolean;
  /** Bytes after the last intact record, left by a crash and acknowledged by a recovery record. */
  tornTail?: { offset: number; bytes: number; sha256: string };
}

export interface DigestBody {
  digestVersion: 1;
  /** The signing key's version (token object p11kms-audit:signing:v<N>); absent before keys rotated: 1. */
  signingKeyVersion?: number;
  /** The bound the writer keeps on records chained but not yet signed (verify checks the tail against it). */
  unsignedTailBound?: { maxSeconds: number; maxRecords: number };
  digestSequence: number;
  digestTime: string;
  reason: string;
  previousDigestFile: string | null;
  /** SHA-256 of the previous digest file's bytes, signature included. */
  previousDigestSha256: string | null;
  signatureAlgorithm: typeof SIGNATURE_ALGORITHM;
  /** SHA-256 of the signing key's SubjectPublicKeyInfo (DER). */
  publicKeyFingerprint: string;
  chainHead: { sequenceNumber: number; recordHash: string };
  files: FileCoverage[];
}

/** The bytes a digest signature covers. JSON.parse → JSON.stringify reproduces them exactly. */
export function signedBytesOf(body: DigestBody): Buffer {
  return Buffer.from(JSON.stringify(body), 'utf8');
}

export function readDigest(dir: string, name: string): { raw: Buffer; body: DigestBody; signature: string } {
  const raw = fs.readFileSync(path.join(dir, name));
  const parsed = JSON.parse(raw.toString('utf8')) as { digest: DigestBody; signature: string };
  if (!parsed || typeof parsed !== 'object' || typeof parsed.signature !== 'string' || typeof parsed.digest !== 'object') {
    throw new Error('not a digest file');
  }
  return { raw, body: parsed.digest, signature: parsed.signature };
}

/**
 * The recovery records a file opens with (start-up and an in-process recovery write them
 * before any other record): they say where the torn tails of earlier files start.
 */
export function* leadingRecoveryRecords(file: string): Generator<ScannedLine & { record: ParsedRecord }> {
  for (const l of readLines(file, 64 * 1024)) {
    const opened = openRecord(l.text);
    if ('error' in opened || opened.record.eventName !== RECOVERY_EVENT) return;
    yield { ...l, record: opened.record };
  }
}
