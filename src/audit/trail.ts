import { createHash, type Hash } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { Logger } from 'pino';
import type { Clock } from '../clock';
import { type ChainHead, type DigestSigner, Digests, type FileState, UnsignedTail } from './digests';
import type { AuditEvent, AuditSink } from './event';
import { fsyncDir, publishPublicKey } from './files';
import { GENESIS_HASH, listTrailFiles, sealRecord, trailFileName } from './format';
import { SigningKeyRotation } from './key-rotation';
import { recoverTrail, recoveryEvent } from './recovery';

export type { DigestSigner } from './digests';

export type FsyncPolicy = 'always' | 'batch' | 'none';

export interface TrailSettings {
  dir: string;
  /** A file reaching this size is closed and a new one started. */
  maxFileBytes: number;
  /** A file older than this is closed (when it holds at least one record). */
  rotationSeconds: number;
  /**
   * always: a record is on disk (fdatasync) before its response is sent; concurrent requests
   *   share one fdatasync.
   * batch: written to the OS before the response, fdatasync at most BATCH_FSYNC_MS later;
   *   survives a process crash, may lose the last second to a power failure.
   * none: written to the OS before the response; fdatasync only at rotation, digest and close.
   */
  fsync: FsyncPolicy;
  /**
   * fsync 'always': batches whose fdatasync may be running at once (default 1). With more, a
   * disk that completes concurrent flushes together serves several group commits per flush
   * time; but every batch is smaller, and each has its own write and fdatasync. On the test
   * VM's disk 1 gave the most requests per second at the least CPU (README, Performance).
   */
  syncsInFlight?: number;
  /** Told how long each fdatasync of the trail took (metrics). */
  onFsync?: (seconds: number) => void;
  /**
   * Host and process writing this chain, when several processes share a deployment (each
   * keeps its own chain in its own directory); recorded in every record as p11kmsProcess.
   */
  identity?: string;
  /**
   * The unsigned tail's bound: records chained but not yet covered by a signed digest. A
   * digest is signed before the oldest such record is `unsignedMaxSeconds` old or there are
   * `unsignedMaxRecords` of them; every digest states the bound, and `audit verify` reports a
   * longer tail as an error.
   */
  unsignedMaxSeconds: number;
  unsignedMaxRecords: number;
  /** The signing key rotates when its version is this many days old (0: only on request). */
  signingKeyRotationDays: number;
}

const BATCH_FSYNC_MS = 1000;
const ROTATION_CHECK_MS = 60_000;

interface Pending {
  line: string;
  sequenceNumber: number;
  recordHash: string;
  resolve: () => void;
  reject: (err: Error) => void;
}

interface ActiveFile {
  name: string;
  handle: fs.promises.FileHandle;
  openedAt: number;
  bytes: number;
  hash: Hash;
  recordCount: number;
  firstSequence: number | null;
  lastSequence: number | null;
  lastRecordHash: string | null;
}

/**
 * The append-only, hash-chained, HSM-signed audit trail. Records are chained in the order
 * `record` is called (sequence and hash are fixed at once, synchronously), then written in
 * batches by a single flush loop: one write and one fdatasync for every record that queued
 * up while the previous batch was being made durable (group commit). Any write failure
 * stops the trail: every later record is refused, so the service fails requests rather
 * than answer without a record. A restart recovers.
 */
export class AuditTrail implements AuditSink {
  private active!: ActiveFile;
  private nextSequence = 1;
  private lastRecordHash = GENESIS_HASH;
  private queue: Pending[] = [];
  private flushing: Promise<void> | undefined;
  private failure: Error | undefined;
  private unsynced = false;
  private syncWanted = false;
  private rotationWanted = false;
  /** The newest record that reached the file (the chain head a digest may vouch for). */
  private writtenHead: ChainHead = { sequenceNumber: 0, recordHash: GENESIS_HASH };
  private digestWaiters: Array<{ reason: string; rotateKey?: boolean; resolve: () => void; reject: (e: Error) => void }> = [];
  private readonly tail: UnsignedTail;
  private digests!: Digests;
  private keyRotation!: SigningKeyRotation;
  private batchTimer: NodeJS.Timeout | undefined;
  private rotationTimer: NodeJS.Timeout | undefined;
  private closed = false;
  private closing = false;
  /** fsync 'always': fdatasyncs started and not yet finished, oldest first. */
  private syncs: Array<Promise<void>> = [];
  /** fsync 'always': settles when the newest batch and every batch before it are durable. */
  private durable: Promise<void> = Promise.resolve();

  private constructor(
    private readonly settings: TrailSettings,
    private readonly signer: DigestSigner,
    private readonly clock: Clock,
    private readonly log: Logger,
  ) {
    this.tail = new UnsignedTail(settings, (reason, insideFlushLoop, failed) => this.requestTailDigest(reason, insideFlushLoop, failed), log);
  }

  static async open(settings: TrailSettings, signer: DigestSigner, clock: Clock, log: Logger): Promise<AuditTrail> {
    const trail = new AuditTrail(settings, signer, clock, log);
    await trail.start();
    return trail;
  }

  record(event: AuditEvent): Promise<void> {
    if (this.failure) return Promise.reject(this.failure);
    // From the moment close() starts, the shutdown digest describes the file as closed: a record
    // written after it (a request still at work when the drain time ran out) would read as bytes
    // appended to a closed file, a false tampering alarm. The request is refused instead.
    if (this.closed || this.closing) return Promise.reject(new Error('the audit trail is closed'));
    const sequenceNumber = this.nextSequence;
    const { line, hash } = sealRecord(this.settings.identity ? { ...event, p11kmsProcess: this.settings.identity } : event, { sequenceNumber, previousRecordHash: this.lastRecordHash });
    this.nextSequence++;
    this.lastRecordHash = hash;
    return new Promise<void>((resolve, reject) => {
      this.queue.push({ line, sequenceNumber, recordHash: hash, resolve, reject });
      this.kick();
    });
  }

  /** Signs a digest of everything written so far (on demand: SIGUSR2, shutdown). */
  digestNow(reason: string): Promise<void> {
    return this.queueDigest(reason, false);
  }

  /**
   * Signs everything written so far with the current key, makes a new key version current
   * (`audit rotate-key`, or the schedule) and signs a digest with it at once.
   */
  rotateSigningKey(reason: string): Promise<void> {
    return this.queueDigest(reason, true);
  }

  private queueDigest(reason: string, rotateKey: boolean): Promise<void> {
    if (this.failure) return Promise.reject(this.failure);
    return new Promise((resolve, reject) => {
      this.digestWaiters.push({ reason, rotateKey, resolve, reject });
      this.kick();
    });
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closing = true;
    if (!this.failure) await this.digestNow('shutdown').catch((err: unknown) => this.log.error({ err }, 'audit digest at shutdown failed'));
    this.closed = true;
    clearInterval(this.batchTimer);
    clearInterval(this.rotationTimer);
    this.tail.stop();
    this.keyRotation.stop();
    await this.flushing;
    await this.settle();
    await this.active.handle.close().catch(() => undefined);
  }

  private kick(): void {
    this.flushing ??= this.flushLoop().finally(() => {
      this.flushing = undefined;
      if (!this.failure && (this.queue.length > 0 || this.digestWaiters.length > 0 || this.rotationWanted || this.syncWanted)) this.kick();
    });
  }

  private async flushLoop(): Promise<void> {
    while (!this.failure && (this.queue.length > 0 || this.rotationWanted || this.digestWaiters.length > 0 || this.syncWanted)) {
      if (this.queue.length > 0) {
        const batch = this.queue;
        this.queue = [];
        try {
          if (this.active.bytes >= this.settings.maxFileBytes) {
            await this.settle();
            await this.rotate('size');
          }
          await this.append(batch);
        } catch (err) {
          this.fail(err, batch);
          return;
        }
        if (this.settings.fsync === 'always') {
          this.commit(batch);
          // Bounded: each running fdatasync holds a libuv pool thread.
          if (this.syncs.length >= (this.settings.syncsInFlight ?? 1)) await this.syncs[0].catch(() => undefined);
        } else {
          for (const p of batch) p.resolve();
        }
        // A digest that is waiting goes before the next batch: under constant load the queue
        // is never empty, and the unsigned tail must stay bounded.
        if (this.digestWaiters.length === 0) continue;
        await this.settle();
        if (this.failure) return;
      } else {
        await this.settle();
        if (this.failure) return;
        if (this.rotationWanted) {
          this.rotationWanted = false;
          try {
            await this.rotate('time');
          } catch (err) {
            this.fail(err, []);
            return;
          }
          continue;
        }
        if (this.syncWanted) {
          this.syncWanted = false;
          try {
            await this.sync();
          } catch (err) {
            this.fail(err, []);
            return;
          }
          continue;
        }
      }
      if (this.digestWaiters.length === 0) continue;
      const waiters = this.digestWaiters.splice(0);
      try {
        await this.sync();
        await this.digests.write(waiters.map((w) => w.reason).join(','));
        if (waiters.some((w) => w.rotateKey)) await this.digests.switchKey();
        for (const w of waiters) w.resolve();
      } catch (err) {
        for (const w of waiters) w.reject(err as Error);
      }
    }
  }

  private async append(batch: Pending[]): Promise<void> {
    const data = Buffer.from(batch.map((p) => p.line).join(''), 'utf8');
    let written = 0;
    // Into the page cache, on this thread: a few kilobytes cost less than a pool round trip.
    // Only the flush (fdatasync) waits for the disk, and it runs on the pool.
    while (written < data.length) {
      written += fs.writeSync(this.active.handle.fd, data, written, data.length - written, this.active.bytes + written);
    }
    if (this.settings.fsync !== 'always') this.unsynced = true;
    const f = this.active;
    f.bytes += data.length;
    f.hash.update(data);
    for (const p of batch) {
      f.firstSequence ??= p.sequenceNumber;
      f.lastSequence = p.sequenceNumber;
      f.lastRecordHash = p.recordHash;
      f.recordCount++;
      this.writtenHead = { sequenceNumber: p.sequenceNumber, recordHash: p.recordHash };
    }
    this.tail.note(batch.length);
  }

  /**
   * Queues a digest for the unsigned tail. From inside the flush loop (append) the waiter is
   * only queued — the loop takes waiting digests after each batch; kicking there could start
   * a second loop while the first is still in its synchronous part. From the timer, the loop
   * is kicked.
   */
  private requestTailDigest(reason: string, insideFlushLoop: boolean, failed: (err: Error) => void): boolean {
    if (this.failure || this.closed) return false;
    if (insideFlushLoop) this.digestWaiters.push({ reason, resolve: () => undefined, reject: failed });
    else void this.digestNow(reason).catch(failed);
    return true;
  }

  /**
   * Starts the batch's own fdatasync and answers the batch once it and every earlier batch's
   * have succeeded: a later flush that succeeds says nothing about an earlier one that failed
   * (Linux reports a write-back error to one fsync only).
   */
  private commit(batch: Pending[]): void {
    const synced = this.datasync();
    this.syncs.push(synced);
    const durable = Promise.all([this.durable, synced]).then(() => undefined);
    this.durable = durable;
    const done = () => {
      this.syncs.splice(this.syncs.indexOf(synced), 1);
    };
    durable.then(
      () => {
        done();
        for (const p of batch) p.resolve();
      },
      (err: unknown) => {
        done();
        this.fail(err, batch);
      },
    );
  }

  /** Waits for every running fdatasync (before a rotation, a digest or closing the file). */
  private async settle(): Promise<void> {
    await this.durable.catch(() => undefined);
  }

  private fail(err: unknown, batch: Pending[]): void {
    if (this.failure) {
      for (const p of batch) p.reject(this.failure);
      return;
    }
    const error = err instanceof Error ? err : new Error(String(err));
    this.failure = new Error(`audit trail write failed: ${error.message}`);
    this.log.error({ err: error.message, file: this.active?.name, dir: this.settings.dir }, 'audit trail cannot be written; refusing every request until restarted');
    for (const p of [...batch, ...this.queue.splice(0)]) p.reject(this.failure);
    for (const w of this.digestWaiters.splice(0)) w.reject(this.failure);
  }

  private async sync(): Promise<void> {
    if (!this.unsynced) return;
    this.unsynced = false;
    await this.datasync();
  }

  private async datasync(): Promise<void> {
    const started = process.hrtime.bigint();
    await this.active.handle.datasync();
    this.settings.onFsync?.(Number(process.hrtime.bigint() - started) / 1e9);
  }

  /** Records accepted and not yet written (metrics); whether the trail still accepts records (readiness). */
  state(): { queued: number; failure: string | undefined } {
    return { queued: this.queue.length, failure: this.failure?.message ?? (this.closed ? 'the audit trail is closed' : undefined) };
  }

  private activeState(closed: boolean): FileState {
    const f = this.active;
    return {
      name: f.name,
      bytes: f.bytes,
      sha256: f.hash.copy().digest('hex'),
      recordCount: f.recordCount,
      firstSequence: f.firstSequence,
      lastSequence: f.lastSequence,
      lastRecordHash: f.lastRecordHash,
      closed,
    };
  }

  private async rotate(why: string): Promise<void> {
    await this.sync();
    this.digests.track(this.activeState(true));
    await this.active.handle.close();
    const previous = this.active.name;
    await this.openNewFile(listTrailFiles(this.settings.dir).reduce((max, f) => Math.max(max, f.sequence), 0) + 1);
    this.log.info({ closed: previous, opened: this.active.name, why }, 'audit trail rotated');
    // A digest that cannot be signed now is retried at the next rotation; the records stay chained.
    await this.digests.write(`rotation:${why}`).catch((err: unknown) => this.log.error({ err: (err as Error).message }, 'audit digest could not be signed'));
  }

  private async openNewFile(sequence: number): Promise<void> {
    const openedAt = this.clock.now();
    const name = trailFileName(sequence, openedAt);
    const handle = await fs.promises.open(path.join(this.settings.dir, name), 'wx', 0o600);
    await fsyncDir(this.settings.dir);
    this.active = { name, handle, openedAt, bytes: 0, hash: createHash('sha256'), recordCount: 0, firstSequence: null, lastSequence: null, lastRecordHash: null };
  }

  private async start(): Promise<void> {
    const dir = this.settings.dir;
    fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
    publishPublicKey(dir, this.signer, this.log);
    const found = recoverTrail(dir, this.signer.version, this.log);
    this.nextSequence = found.head.sequenceNumber + 1;
    this.lastRecordHash = found.head.recordHash;
    this.writtenHead = found.head;
    this.digests = new Digests(this.settings, this.signer, this.clock, this.log, this.tail, () => ({ file: this.activeState(this.closing), head: this.writtenHead }), found.signed);
    const accepting = () => !this.failure && !this.closed;
    this.keyRotation = new SigningKeyRotation(dir, this.settings.signingKeyRotationDays, this.digests, (reason) => this.rotateSigningKey(reason), accepting, this.log);

    // A new process never appends to an old file: a torn tail stays exactly as the crash left it.
    await this.openNewFile((found.newestFile ?? 0) + 1);
    for (const t of found.torn) await this.record(recoveryEvent(t, this.clock.now()));
    await this.digests.write(found.newestFile !== undefined ? 'startup' : 'created');

    if (this.settings.fsync === 'batch') {
      this.batchTimer = setInterval(() => {
        if (!this.unsynced || this.failure || this.closed) return;
        this.syncWanted = true;
        this.kick();
      }, BATCH_FSYNC_MS);
      this.batchTimer.unref();
    }
    this.rotationTimer = setInterval(() => {
      this.rotateIfOld();
      this.keyRotation.check();
    }, Math.min(ROTATION_CHECK_MS, this.settings.rotationSeconds * 1000));
    this.rotationTimer.unref();
    this.keyRotation.start();
    this.log.info({ dir, file: this.active.name, nextSequence: this.nextSequence, fsync: this.settings.fsync }, 'audit trail open');
  }

  private rotateIfOld(): void {
    if (this.failure || this.closed) return;
    if (this.active.recordCount > 0 && this.clock.now() - this.active.openedAt >= this.settings.rotationSeconds * 1000) {
      this.rotationWanted = true;
      this.kick();
    }
  }
}
