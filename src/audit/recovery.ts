import { randomUUID } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { Logger } from 'pino';
import { type ChainHead, coverageKey, type FileState, type SignedState } from './digests';
import { type AuditEvent, EVENT_SOURCE, EVENT_VERSION, isoSeconds, SERVICE_INVOKER } from './event';
import { GENESIS_HASH, listDigestFiles, listTrailFiles, openRecord, readDigest, RECOVERY_EVENT, sha256Hex, splitLines } from './format';

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

/** Reads what earlier processes left in the trail directory: their digests, files and chain head. */
export function recoverTrail(dir: string, signingKeyVersion: number, log: Logger): Recovered {
  const signed: SignedState = { files: new Map(), covered: new Map(), lastDigest: undefined, keySince: undefined };
  for (const d of listDigestFiles(dir)) {
    try {
      const { raw, body } = readDigest(dir, d.name);
      for (const f of body.files) {
        signed.files.set(f.name, { ...f });
        signed.covered.set(f.name, coverageKey(f));
      }
      signed.lastDigest = { name: d.name, sha256: sha256Hex(raw), sequence: Math.max(body.digestSequence, d.sequence) };
      // The current key signs since its first digest.
      if ((body.signingKeyVersion ?? 1) === signingKeyVersion && signed.keySince === undefined) signed.keySince = Date.parse(body.digestTime);
    } catch (err) {
      log.error({ digest: d.name, err: (err as Error).message }, 'unreadable audit digest; `p11kms audit verify` will report it');
      signed.lastDigest = { name: d.name, sha256: sha256Hex(fs.readFileSync(path.join(dir, d.name))), sequence: d.sequence };
    }
  }

  const trailFiles = listTrailFiles(dir);
  const torn: TornTail[] = [];
  let head: ChainHead | undefined;
  // Every file a digest does not describe in full is scanned: after a crash, the last
  // files were never signed. The newest record found becomes the head of the chain.
  for (let i = trailFiles.length - 1; i >= 0; i--) {
    const name = trailFiles[i].name;
    const data = fs.readFileSync(path.join(dir, name));
    const known = signed.files.get(name);
    if (head && known && known.closed && known.bytes === data.length) break;
    const state = scanFile(name, data);
    const acknowledged = known?.tornTail && state.tornTail && known.tornTail.offset === state.tornTail.offset;
    if (state.tornTail && known && state.tornTail.offset < known.bytes) {
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

/** Reads a file written by an earlier process: its stats and any torn tail. */
function scanFile(name: string, data: Buffer): FileState {
  const { lines, tail } = splitLines(data);
  let recordCount = 0;
  let firstSequence: number | null = null;
  let lastSequence: number | null = null;
  let lastRecordHash: string | null = null;
  let intactEnd = 0;
  for (const l of lines) {
    const opened = openRecord(l.text);
    if (!('record' in opened) || 'error' in opened) continue;
    recordCount++;
    firstSequence ??= opened.record.sequenceNumber;
    lastSequence = opened.record.sequenceNumber;
    lastRecordHash = opened.record.recordHash;
    intactEnd = l.offset + Buffer.byteLength(l.text) + 1;
  }
  // Only bytes after the last intact record count as torn; damage further up is tampering, for verify to report.
  const tornStart = intactEnd;
  const tornBytes = data.subarray(tornStart);
  void tail;
  return {
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
}

export function recoveryEvent(t: TornTail, now: number): AuditEvent {
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
    additionalEventData: { tornFile: t.file, tornOffset: t.offset, tornBytes: t.bytes, tornSha256: t.sha256, lastIntactSequence: t.lastIntactSequence },
    eventID: randomUUID(),
    readOnly: false,
    eventType: 'AwsServiceEvent',
    managementEvent: true,
    eventCategory: 'Management',
  };
}
