import { randomUUID } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { Logger } from 'pino';
import { type ChainHead, coverageKey, type FileState, type SignedState } from './digests';
import { type AuditEvent, EVENT_SOURCE, EVENT_VERSION, isoSeconds, SERVICE_INVOKER } from './event';
import { type DigestBody, GENESIS_HASH, listDigestFiles, listTrailFiles, type NamedFile, openRecord, readDigest, RECOVERY_EVENT, sha256Hex, splitLines } from './format';

export interface TornTail {
  file: string;
  offset: number;
  bytes: number;
  sha256: string;
  lastIntactSequence: number | null;
}

export interface Recovered {
  signed: SignedState;
  /** The newest record on disk (sequence 0 on a new trail): the chain continues after it. */
  head: ChainHead;
  /** Crash-torn file ends not yet recorded, oldest first: each gets a recovery record. */
  torn: TornTail[];
  /** Sequence number of the newest trail file; undefined on a new trail. */
  newestFile: number | undefined;
}

/**
 * The digests of a trail directory, read newest first and only as far back as a question
 * needs. Start-up read every digest ever written (~60 µs each), and a service under steady load
 * signs one a minute: 20,000 digests took 0.4–0.5 s, 3.8 s from a cold page cache. It needs the
 * newest digest, the first one the current signing key signed, and what the newest digests say
 * of the newest trail files (every file is listed by the digest its process signs after opening
 * it, and at rotation, shutdown and every minute while it is written). A file no digest lists (a
 * crash between opening it and that first digest) sends the search through every digest, once,
 * as every start did before. Unreadable digests are logged when read, no longer all at each
 * start: `audit verify` reads and reports every one.
 */
class DigestHistory {
  private readonly digests: NamedFile[];
  /** Index of the next older digest `latestState` reads. */
  private older: number;
  private readonly read = new Map<number, { raw: Buffer; body: DigestBody } | null>();
  /** Each file's state as the newest digest read so far that lists it gave it. */
  private readonly states = new Map<string, FileState>();

  constructor(
    private readonly dir: string,
    private readonly log: Logger,
  ) {
    this.digests = listDigestFiles(dir);
    this.older = this.digests.length - 1;
  }

  /** The newest digest: the next one names it and its hash. */
  newest(): SignedState['lastDigest'] {
    const d = this.digests.at(-1);
    if (!d) return undefined;
    const digest = this.digest(this.digests.length - 1);
    if (!digest) return { name: d.name, sha256: sha256Hex(fs.readFileSync(path.join(this.dir, d.name))), sequence: d.sequence };
    return { name: d.name, sha256: sha256Hex(digest.raw), sequence: Math.max(digest.body.digestSequence, d.sequence) };
  }

  /** What the newest digest listing `name` said of it; undefined when none does. */
  latestState(name: string): FileState | undefined {
    while (!this.states.has(name) && this.older >= 0) {
      for (const f of this.body(this.older--)?.files ?? []) if (!this.states.has(f.name)) this.states.set(f.name, { ...f });
    }
    return this.states.get(name);
  }

  /**
   * When `version` of the signing key signed its first digest here. Versions only grow from one
   * digest to the next (a rotation, or taking up another process's), so a binary search finds
   * it; an unreadable digest on its way sends it through every digest in turn instead.
   */
  firstSignedBy(version: number): number | undefined {
    const versionAt = (i: number) => {
      const body = this.body(i);
      return body ? (body.signingKeyVersion ?? 1) : undefined;
    };
    let low = 0;
    let high = this.digests.length;
    while (low < high) {
      const middle = (low + high) >>> 1;
      const found = versionAt(middle);
      if (found === undefined) return this.firstSignedByScanning(version);
      if (found < version) low = middle + 1;
      else high = middle;
    }
    return low < this.digests.length && versionAt(low) === version ? Date.parse(this.body(low)!.digestTime) : undefined;
  }

  private firstSignedByScanning(version: number): number | undefined {
    for (let i = 0; i < this.digests.length; i++) {
      const body = this.body(i);
      if (body && (body.signingKeyVersion ?? 1) === version) return Date.parse(body.digestTime);
    }
    return undefined;
  }

  private body(index: number): DigestBody | undefined {
    return this.digest(index)?.body;
  }

  private digest(index: number): { raw: Buffer; body: DigestBody } | undefined {
    let digest = this.read.get(index);
    if (digest === undefined) {
      const name = this.digests[index].name;
      try {
        digest = readDigest(this.dir, name);
        if (!Array.isArray(digest.body.files)) throw new Error('its files are not a list');
      } catch (err) {
        this.log.error({ digest: name, err: (err as Error).message }, 'unreadable audit digest; `p11kms audit verify` will report it');
        digest = null;
      }
      this.read.set(index, digest);
    }
    return digest ?? undefined;
  }
}

/** Reads what earlier processes left in the trail directory: the digests it needs, files and chain head. */
export function recoverTrail(dir: string, signingKeyVersion: number, log: Logger): Recovered {
  const history = new DigestHistory(dir, log);
  // Only files the scan below visits are in `files` and `covered`: the next digest lists the
  // files whose state differs from what a digest last said, and the others' do not.
  const signed: SignedState = { files: new Map(), covered: new Map(), lastDigest: history.newest(), keySince: history.firstSignedBy(signingKeyVersion) };

  const trailFiles = listTrailFiles(dir);
  const torn: TornTail[] = [];
  let head: ChainHead | undefined;
  // Torn tails that recovery records in newer files describe (a recovery without restart
  // describes the bytes after the last record known durable, which may hold whole records).
  const described = new Map<string, Torn>();
  // Every file a digest does not describe in full is scanned: after a crash, the last
  // files were never signed. The newest record found becomes the head of the chain.
  for (let i = trailFiles.length - 1; i >= 0; i--) {
    const name = trailFiles[i].name;
    const data = fs.readFileSync(path.join(dir, name));
    const known = history.latestState(name);
    if (head && known && known.closed && known.bytes === data.length) break;
    if (known) signed.covered.set(name, coverageKey(known));
    const recorded = described.get(name);
    const recordedHere = recorded !== undefined && recorded.offset + recorded.bytes === data.length && sha256Hex(data.subarray(recorded.offset)) === recorded.sha256;
    const { state, recoveries } = scanFile(name, data, recordedHere ? recorded.offset : undefined);
    for (const r of recoveries) if (!described.has(r.file)) described.set(r.file, r);
    const acknowledged = recordedHere || (known?.tornTail && state.tornTail && known.tornTail.offset === state.tornTail.offset);
    if (state.tornTail && !acknowledged && known && state.tornTail.offset < known.bytes) {
      // A crash only tears what was never signed; damage inside signed bytes is tampering
      // and must not be laundered into a recovery record.
      log.error({ file: name, offset: state.tornTail.offset }, 'audit trail file was altered inside bytes a digest already signed; run `p11kms audit verify`');
      delete state.tornTail;
    } else if (state.tornTail && !acknowledged) {
      torn.push({ file: name, ...state.tornTail, lastIntactSequence: state.lastSequence });
      log.warn({ file: name, offset: state.tornTail.offset, bytes: state.tornTail.bytes }, 'audit trail file ends with an incomplete record (crash); kept as evidence, chain continues in a new file');
    }
    signed.files.set(name, { ...state, closed: true });
    if (!head && state.lastSequence !== null) head = { sequenceNumber: state.lastSequence, recordHash: state.lastRecordHash! };
  }
  return { signed, head: head ?? { sequenceNumber: 0, recordHash: GENESIS_HASH }, torn: torn.reverse(), newestFile: trailFiles.at(-1)?.sequence };
}

/**
 * Files the running process could no longer finish writing, until a recovery record describes
 * them: each is then described like a file of an earlier process, except that its intact part
 * ends where the last record known durable ends (`intactBytes`): whatever follows, whole
 * records included, belongs to requests that were refused, and is kept as evidence.
 */
export class UnfinishedFiles {
  private files = new Map<string, { intactBytes: number; described?: { state: FileState; torn?: TornTail } }>();

  constructor(
    private readonly dir: string,
    private readonly log: Logger,
  ) {}

  add(name: string, intactBytes: number): void {
    if (!this.files.has(name)) this.files.set(name, { intactBytes });
  }

  delete(name: string): void {
    this.files.delete(name);
  }

  names(): string[] {
    return [...this.files.keys()];
  }

  clear(): void {
    this.files.clear();
  }

  /** Each file as it is now, made durable first (a file already described is only looked at again when its size changed). */
  async describe(): Promise<Array<{ state: FileState; torn?: TornTail }>> {
    const out = [];
    for (const [name, f] of this.files) {
      const file = path.join(this.dir, name);
      if (f.described?.state.bytes !== (await fs.promises.stat(file)).size) f.described = await this.describeFile(name, file, f.intactBytes);
      out.push(f.described);
    }
    return out;
  }

  private async describeFile(name: string, file: string, intactBytes: number): Promise<{ state: FileState; torn?: TornTail }> {
    const handle = await fs.promises.open(file, 'r');
    let data: Buffer;
    try {
      // A recovery record must describe bytes that are on disk, not only in the page cache.
      await handle.datasync();
      data = await handle.readFile();
    } finally {
      await handle.close();
    }
    if (data.length < intactBytes) this.log.error({ file: name, bytes: data.length, written: intactBytes }, 'audit trail file lost records already written; run `p11kms audit verify`');
    const { state } = scanFile(name, data, Math.min(intactBytes, data.length));
    return { state, ...(state.tornTail ? { torn: { file: name, ...state.tornTail, lastIntactSequence: state.lastSequence } } : {}) };
  }
}

type Torn = { file: string; offset: number; bytes: number; sha256: string };

/**
 * Reads a file written by an earlier process: its stats, any torn tail, and the torn tails its
 * recovery records describe. `tornFrom`: where a recovery record says the torn bytes start.
 */
function scanFile(name: string, data: Buffer, tornFrom?: number): { state: FileState; recoveries: Torn[] } {
  const { lines } = splitLines(data);
  let recordCount = 0;
  let firstSequence: number | null = null;
  let lastSequence: number | null = null;
  let lastRecordHash: string | null = null;
  let intactEnd = 0;
  const recoveries: Torn[] = [];
  for (const l of lines) {
    if (tornFrom !== undefined && l.offset >= tornFrom) break;
    const opened = openRecord(l.text);
    if (!('record' in opened) || 'error' in opened) continue;
    recordCount++;
    firstSequence ??= opened.record.sequenceNumber;
    lastSequence = opened.record.sequenceNumber;
    lastRecordHash = opened.record.recordHash;
    intactEnd = l.offset + Buffer.byteLength(l.text) + 1;
    const extra = opened.record.additionalEventData as Record<string, unknown> | undefined;
    if (opened.record.eventName === RECOVERY_EVENT && typeof extra?.tornFile === 'string') {
      recoveries.push({ file: extra.tornFile, offset: Number(extra.tornOffset), bytes: Number(extra.tornBytes), sha256: String(extra.tornSha256) });
    }
  }
  // Only bytes after the last intact record count as torn; damage further up is tampering, for verify to report.
  const tornStart = tornFrom ?? intactEnd;
  const tornBytes = data.subarray(tornStart);
  const state: FileState = {
    name,
    bytes: data.length,
    sha256: sha256Hex(data),
    recordCount,
    firstSequence,
    lastSequence,
    lastRecordHash,
    closed: true,
    ...(tornBytes.length > 0 ? { tornTail: { offset: tornStart, bytes: tornBytes.length, sha256: sha256Hex(tornBytes) } } : {}),
  };
  return { state, recoveries };
}

/**
 * The AuditTrailRecovered service event: after a crash (start-up), or when the trail could be
 * written again after `writeFailure` (without restart). `torn`: bytes of a record that did
 * not complete, kept as evidence; none when no byte of the failed write reached the file.
 */
export function recoveryEvent(torn: TornTail | undefined, now: number, writeFailure?: { error: string; since: number; lastIntactSequence: number }): AuditEvent {
  return {
    eventVersion: EVENT_VERSION,
    userIdentity: { invokedBy: SERVICE_INVOKER },
    eventTime: isoSeconds(now),
    eventSource: EVENT_SOURCE,
    eventName: RECOVERY_EVENT,
    awsRegion: 'local',
    sourceIPAddress: SERVICE_INVOKER,
    userAgent: SERVICE_INVOKER,
    requestParameters: null,
    responseElements: null,
    additionalEventData: {
      ...(torn ? { tornFile: torn.file, tornOffset: torn.offset, tornBytes: torn.bytes, tornSha256: torn.sha256, lastIntactSequence: torn.lastIntactSequence } : {}),
      ...(writeFailure ? { writeFailure: writeFailure.error, writeFailedAt: isoSeconds(writeFailure.since), ...(torn ? {} : { lastIntactSequence: writeFailure.lastIntactSequence }) } : {}),
    },
    eventID: randomUUID(),
    readOnly: false,
    eventType: 'AwsServiceEvent',
    managementEvent: true,
    eventCategory: 'Management',
  };
}
