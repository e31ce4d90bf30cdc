import { createHash, type Hash } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { Logger } from 'pino';
import type { Clock } from '../clock';
import { type ChainHead, type DigestSigner, Digests, type FileState, UnsignedTail } from './digests';
import type { AuditEvent, AuditSink } from './event';
import { syncDirectory } from '../durable-fs';
import { publishPublicKey } from './files';
import { GENESIS_HASH, listTrailFiles, sealRecord, trailFileName } from './format';
import { SigningKeyRotation } from './key-rotation';
import { recoverTrail, recoveryEvent, UnfinishedFiles } from './recovery';
import type { TrailSettings } from './settings';

export type { DigestSigner } from './digests';

export type { FsyncPolicy, TrailSettings } from './settings';

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
 * stops the trail: records are refused, so the service fails requests rather than answer
 * without a record, until a later record (or the readiness probe) finds that the trail can be
 * written again (recover).
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
  /** Settles once every batch handed to commit() so far has been answered or refused. */
  private committed: Promise<void> = Promise.resolve();
  /** The end of the newest batch whose requests may be answered (durable, or written unless fsync 'always'). */
  private answered!: { file: string; bytes: number; head: ChainHead };
  /** After a write failure: the attempt to write again, at most one at a time. */
  private recovering: Promise<void> | undefined;
  private unfinished!: UnfinishedFiles;
  /** Since when, and why, the trail cannot be written. */
  private outage: { since: number; cause: string } | undefined;

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
    if (this.failure && !this.closing) return this.recover().then(() => this.enqueue(event));
    return this.enqueue(event);
  }

  /**
   * After a write failure, tries to write again (a no-op on a healthy trail): once it
   * succeeds, records are accepted again. Requests that arrive during an attempt wait for it.
   */
  recover(): Promise<void> {
    if (!this.failure) return Promise.resolve();
    if (this.closing) return Promise.reject(this.failure);
    return this.attemptWriteAgain();
  }

  private attemptWriteAgain(): Promise<void> {
    this.recovering ??= this.writeAgain().finally(() => (this.recovering = undefined));
    return this.recovering;
  }

  /** `recoveryRecord`: written while closing too (close() describes a failed write's bytes). */
  private enqueue(event: AuditEvent, recoveryRecord = false): Promise<void> {
    if (this.failure) return Promise.reject(this.failure);
    // From the moment close() starts, the shutdown digest describes the file as closed: a record
    // written after it (a request still at work when the drain time ran out) would read as bytes
    // appended to a closed file, a false tampering alarm. The request is refused instead.
    if (this.closed || (this.closing && !recoveryRecord)) return Promise.reject(new Error('the audit trail is closed'));
    const sequenceNumber = this.nextSequence;
    const { line, hash } = sealRecord(event, { sequenceNumber, previousRecordHash: this.lastRecordHash }, this.settings.identity);
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
    await this.recovering?.catch(() => undefined);
    // Only this process knows which records of a failed write were answered: after a restart,
    // the whole records of refused requests would read as events. Described now if it can be.
    if (this.failure) await this.attemptWriteAgain().catch(() => undefined);
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
            // A digest at rotation must not vouch for records whose fdatasync failed.
            if (this.failure) throw this.failure;
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
    if (this.settings.fsync !== 'always') this.answered = { file: f.name, bytes: f.bytes, head: this.writtenHead };
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
    const mark = { file: this.active.name, bytes: this.active.bytes, head: this.writtenHead };
    const done = () => {
      const i = this.syncs.indexOf(synced);
      if (i >= 0) this.syncs.splice(i, 1);
    };
    const outcome = durable.then(
      () => {
        done();
        this.answered = mark;
        for (const p of batch) p.resolve();
      },
      (err: unknown) => {
        done();
        this.fail(err, batch);
      },
    );
    this.committed = Promise.all([this.committed, outcome]).then(() => undefined);
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
    const where = { err: error.message, file: this.active?.name, dir: this.settings.dir };
    if (this.outage) {
      this.log.warn(where, 'audit trail still cannot be written; requests stay refused');
    } else {
      this.outage = { since: this.clock.now(), cause: this.failure.message };
      this.log.error(where, 'audit trail cannot be written; refusing requests until it can be written again (each later request tries)');
    }
    for (const p of [...batch, ...this.queue.splice(0)]) p.reject(this.failure);
    for (const w of this.digestWaiters.splice(0)) w.reject(this.failure);
  }

  /**
   * What start-up does after a crash, in-process: the file that failed is closed and left as
   * it is, and the chain continues, from the newest record known durable, in a new file whose
   * first records are AuditTrailRecovered events describing the bytes after it (records of
   * refused requests, a record cut short). Answered once those are durable; a digest follows.
   */
  private async writeAgain(): Promise<void> {
    // Every batch's outcome first: an fdatasync still running may yet answer its batch.
    await this.flushing;
    await this.committed;
    const failed = this.active;
    const failure = this.failure!;
    this.unfinished.add(failed.name, this.answered.file === failed.name ? this.answered.bytes : 0);
    let described: Awaited<ReturnType<UnfinishedFiles['describe']>>;
    try {
      await failed.handle.close().catch(() => undefined);
      described = await this.unfinished.describe();
      // A file the failure left empty (a new file's first write failed) is written again.
      if (described.some((d) => d.state.name === failed.name && d.state.bytes === 0)) {
        this.unfinished.delete(failed.name);
        this.active = emptyFile(failed.name, await fs.promises.open(path.join(this.settings.dir, failed.name), 'r+'), failed.openedAt);
      } else {
        await this.openNewFile(listTrailFiles(this.settings.dir).reduce((max, f) => Math.max(max, f.sequence), 0) + 1);
      }
    } catch (err) {
      this.log.warn({ err: (err as Error).message, dir: this.settings.dir }, 'audit trail still cannot be written; requests stay refused');
      throw failure;
    }
    for (const d of described) if (d.state.name !== this.active.name) this.digests.track(d.state);
    const head = this.answered.head;
    this.nextSequence = head.sequenceNumber + 1;
    this.lastRecordHash = head.recordHash;
    this.writtenHead = head;
    this.answered = { file: this.active.name, bytes: 0, head };
    this.durable = Promise.resolve();
    this.syncs = [];
    this.unsynced = this.syncWanted = this.rotationWanted = false;
    this.failure = undefined;
    const outage = this.outage!;
    const torn = described.flatMap((d) => (d.torn ? [d.torn] : []));
    const writeFailure = { error: outage.cause, since: outage.since, lastIntactSequence: head.sequenceNumber };
    await Promise.all((torn.length > 0 ? torn : [undefined]).map((t) => this.enqueue(recoveryEvent(t, this.clock.now(), writeFailure), true)));
    const evidence = this.unfinished.names();
    this.unfinished.clear();
    this.outage = undefined;
    this.log.info(
      { file: this.active.name, lastIntactSequence: head.sequenceNumber, evidence, tornBytes: torn.reduce((n, t) => n + t.bytes, 0), outageSeconds: (this.clock.now() - outage.since) / 1000 },
      'audit trail can be written again; requests are answered again',
    );
    // Not awaited: the requests that waited for this attempt need not wait for the token too.
    void this.digestNow('recovered').catch((err: unknown) => this.log.error({ err: (err as Error).message }, 'audit digest could not be signed'));
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
    await syncDirectory(this.settings.dir);
    this.active = emptyFile(name, handle, openedAt);
  }

  private async start(): Promise<void> {
    const dir = this.settings.dir;
    fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
    publishPublicKey(dir, this.signer, this.log);
    const found = recoverTrail(dir, this.signer.version, this.log);
    this.nextSequence = found.head.sequenceNumber + 1;
    this.lastRecordHash = found.head.recordHash;
    this.writtenHead = found.head;
    this.answered = { file: '', bytes: 0, head: found.head };
    this.unfinished = new UnfinishedFiles(dir, this.log);
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

function emptyFile(name: string, handle: fs.promises.FileHandle, openedAt: number): ActiveFile {
  return { name, handle, openedAt, bytes: 0, hash: createHash('sha256'), recordCount: 0, firstSequence: null, lastSequence: null, lastRecordHash: null };
}
