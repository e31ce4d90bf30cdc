import * as path from 'node:path';
import { Worker } from 'node:worker_threads';
import { throttled } from '../errors';
import type { VerifyReport } from '../audit/verify';
import type { AuditReadAnswer, AuditReadRequest } from './audit-read-thread';
import type { LookupRequest, VerifyRequest } from './audit-reads';

/** Reads asked for and not answered yet; one more is refused (each may read the whole trail). */
const MAX_PENDING_READS = 8;

/**
 * Runs the audit endpoint's reads of the trail on a thread of their own. A search or verify
 * of a long trail reads every file (measured: 100,000 records, 2.6–4.1 s); on the event loop
 * every KMS client waited that long. Started at the first read; reads run one at a time.
 */
export class AuditReader {
  private worker: Worker | undefined;
  private nextId = 1;
  private readonly pending = new Map<number, { resolve: (value: unknown) => void; reject: (err: Error) => void }>();

  lookup(request: LookupRequest): Promise<unknown> {
    return this.read({ kind: 'lookup', request });
  }

  verify(request: VerifyRequest): Promise<VerifyReport> {
    return this.read({ kind: 'verify', request }) as Promise<VerifyReport>;
  }

  /** Ends the thread; reads still running are answered with an error. */
  async close(): Promise<void> {
    const worker = this.worker;
    this.worker = undefined;
    if (worker) await worker.terminate();
    this.failPending(new Error('the service is shutting down'));
  }

  private read(message: Omit<AuditReadRequest, 'id'>): Promise<unknown> {
    if (this.pending.size >= MAX_PENDING_READS) {
      return Promise.reject(throttled({ internalDetail: `${this.pending.size} audit reads already waiting` }));
    }
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
      this.thread().postMessage({ ...message, id } as AuditReadRequest);
    });
  }

  private thread(): Worker {
    if (this.worker) return this.worker;
    const worker = new Worker(path.join(__dirname, 'audit-read-thread.js'));
    // Idle, it must not keep the process alive.
    worker.unref();
    worker.on('message', (answer: AuditReadAnswer) => {
      const waiting = this.pending.get(answer.id);
      if (!waiting) return;
      this.pending.delete(answer.id);
      if ('error' in answer) waiting.reject(new Error(`audit read failed: ${answer.error}`));
      else waiting.resolve(answer.value);
    });
    const lost = (err: Error) => {
      if (this.worker === worker) this.worker = undefined;
      this.failPending(err);
    };
    worker.on('error', lost);
    worker.on('exit', (code) => lost(new Error(`the audit read thread exited (${code})`)));
    this.worker = worker;
    return worker;
  }

  private failPending(err: Error): void {
    for (const { reject } of this.pending.values()) reject(err);
    this.pending.clear();
  }
}
