import type { Worker } from 'node:worker_threads';
import type * as pkcs11js from 'pkcs11js';
import { boundCalls } from './bound-calls';
import type { OneShotAnswer, OneShotOperation, OneShotRequest } from './crypto-thread';
import type { TokenObserver } from './token';
import { startTokenThread, type ThreadsAhead } from './token-threads';

/** The compiled file each crypto thread runs. */
export const CRYPTO_THREAD_FILE = 'crypto-thread.js';

type Pending = { resolve: (output: Buffer | boolean) => void; reject: (err: Error) => void; operation: OneShotOperation };

/**
 * One-shot Encrypt, Decrypt, Sign and Verify calls with their C_xInit on worker threads
 * (profile settings `cryptoThreads`, `cryptoThreadMechanisms`). pkcs11js has no asynchronous
 * C_xInit, and SoftHSM2 does much of an ECDSA signature's work there: C_SignInit with a P-256
 * session copy takes as long as C_Sign itself (28 and 31 µs on a quiet machine, 85 and 89 on a
 * busy one), building the OpenSSL key from the object's decrypted attributes. On the event loop
 * that is time no other request is served (Sign P-256 over HTTP is bound by the main thread).
 * Here the thread runs C_xInit and C_x synchronously on the session the operation leased
 * (crypto-thread.ts), and the event loop only posts and receives a message.
 *
 * Each call goes to the thread with the fewest calls in flight. Threads start with their first
 * call (the first thread with warmUp) and are unreferenced while idle, so they never keep the
 * process alive.
 */
export class CryptoThreads {
  private readonly threads: Array<{ worker?: Worker; pending: Map<number, Pending> }>;
  private nextId = 1;

  constructor(
    private readonly module: string,
    private readonly libraryParameters: string | undefined,
    count: number,
    private readonly observer?: TokenObserver,
    /** Where a thread booted before the token opened waits (Token.bootThreads). */
    private readonly ahead?: ThreadsAhead,
  ) {
    this.threads = Array.from({ length: count }, () => ({ pending: new Map<number, Pending>() }));
  }

  /** Calls running or queued on any thread. */
  get busy(): boolean {
    return this.threads.some((t) => t.pending.size > 0);
  }

  /** C_xInit then C_x on `session`, on a thread; answers as pkcs11js's C_xAsync would. */
  call(operation: OneShotOperation, session: Buffer, mechanism: pkcs11js.Mechanism, key: Buffer, data: Buffer, output: number | Buffer): Promise<Buffer | boolean> {
    let thread = this.threads[0];
    for (const t of this.threads) if (t.pending.size < thread.pending.size) thread = t;
    const worker = this.worker(thread);
    const id = this.nextId++;
    if (thread.pending.size === 0) worker.ref();
    return new Promise<Buffer | boolean>((resolve, reject) => {
      thread.pending.set(id, { resolve, reject, operation });
      worker.postMessage({ id, operation, session: exact(session), mechanism, key: exact(key), data: exact(data), output: typeof output === 'number' ? output : exact(output) } satisfies OneShotRequest);
    });
  }

  /** Starts the first thread ahead of the first call, so that its start-up overlaps the caller's work. */
  warmUp(): void {
    this.worker(this.threads[0]);
  }

  /** Ends the threads (token close, once no operation is in flight). */
  close(): void {
    for (const thread of this.threads) {
      const worker = thread.worker;
      thread.worker = undefined;
      void worker?.terminate();
    }
  }

  private worker(thread: { worker?: Worker; pending: Map<number, Pending> }): Worker {
    if (thread.worker) return thread.worker;
    const setup = { module: this.module, libraryParameters: this.libraryParameters };
    // A thread that failed or ended fails what it had; the next call starts a new one.
    const gone = (err: Error) => {
      if (thread.worker !== worker) return;
      thread.worker = undefined;
      for (const { reject } of thread.pending.values()) reject(err);
      thread.pending.clear();
    };
    const worker = startTokenThread(CRYPTO_THREAD_FILE, setup, (answer: OneShotAnswer) => this.answered(thread, answer), gone, 'a token crypto thread', this.ahead);
    thread.worker = worker;
    return worker;
  }

  private answered(thread: { worker?: Worker; pending: Map<number, Pending> }, answer: OneShotAnswer): void {
    const waiting = thread.pending.get(answer.id);
    if (!waiting) return;
    thread.pending.delete(answer.id);
    if (thread.pending.size === 0) thread.worker?.unref();
    const failedAt = 'error' in answer ? answer.failedAt : undefined;
    // Timed as the two calls the event loop would have made, each as long as it took on the thread.
    this.observer?.call(`C_${waiting.operation}Init`, answer.initMs / 1000, failedAt === 'init');
    if (failedAt !== 'init') this.observer?.call(`C_${waiting.operation}`, answer.callMs / 1000, failedAt === 'call');
    if ('error' in answer) {
      // As pkcs11js reports it: the message starts with the CKR name (pkcs11-errors.ts reads it).
      waiting.reject(Object.assign(new Error(answer.error), { name: 'Pkcs11Error', code: answer.code, method: answer.method }));
      return;
    }
    const output = answer.output;
    waiting.resolve(typeof output === 'boolean' ? output : Buffer.from(output.buffer, output.byteOffset, output.byteLength));
  }
}

/**
 * The bytes of `buffer` in an array of their own. Structured cloning copies a view's whole
 * ArrayBuffer, and small Buffers are slices of Node's shared 8 KB pool: posting them as they are
 * cost ~8 % of the main thread in a Sign P-256 profile.
 */
function exact(buffer: Buffer): Uint8Array {
  return new Uint8Array(buffer);
}

const OPERATIONS: readonly OneShotOperation[] = ['Encrypt', 'Decrypt', 'Sign', 'Verify'];

/**
 * `pkcs11` with C_xInit of the `threaded` mechanisms deferred to the call that follows it:
 * C_xAsync then runs both on a crypto thread. Callers are unchanged (C_SignInit, then await
 * C_SignAsync); a failure of either call arrives as the rejected promise, with the same pkcs11js
 * error. A synchronous or multi-part call after a deferred C_xInit makes the C_xInit first, on
 * the calling thread, as before. Other mechanisms are untouched: a short one (AES-GCM, HMAC)
 * costs less than a message, and an RSA key's C_xInit is a few per cent of its signature, whose
 * work the libuv pool shares out over more threads (measured: Sign RSA_3072 beside Encrypt
 * lost a fifth of its rate on two crypto threads).
 */
export function withCryptoThreads(pkcs11: pkcs11js.PKCS11, threads: CryptoThreads, threaded: ReadonlySet<number>): pkcs11js.PKCS11 {
  const calls = boundCalls(pkcs11);
  for (const operation of OPERATIONS) {
    /** The C_xInit each session's next call makes on the thread. */
    const deferred = new WeakMap<Buffer, { mechanism: pkcs11js.Mechanism; key: Buffer }>();
    const init = calls[`C_${operation}Init`] as (session: Buffer, mechanism: pkcs11js.Mechanism, key: Buffer) => void;
    const made = (session: Buffer) => {
      const pending = deferred.get(session);
      if (!pending) return;
      deferred.delete(session);
      init(session, pending.mechanism, pending.key);
    };
    calls[`C_${operation}Init`] = (session: Buffer, mechanism: pkcs11js.Mechanism, key: Buffer) => {
      if (threaded.has(mechanism.mechanism)) return void deferred.set(session, { mechanism, key });
      deferred.delete(session);
      init(session, mechanism, key);
    };
    for (const name of [`C_${operation}`, `C_${operation}Update`, `C_${operation}Final`, `C_${operation}FinalAsync`]) {
      const original = calls[name] as ((session: Buffer, ...rest: unknown[]) => unknown) | undefined;
      if (original) calls[name] = (session: Buffer, ...rest: unknown[]) => (made(session), original(session, ...rest));
    }
    const onPool = calls[`C_${operation}Async`] as (session: Buffer, data: Buffer, output: Buffer) => Promise<unknown>;
    calls[`C_${operation}Async`] = (session: Buffer, data: Buffer, output: Buffer) => {
      const pending = deferred.get(session);
      if (!pending) return onPool(session, data, output);
      deferred.delete(session);
      // Verify's third argument is the signature; the others' the output buffer, of which the thread needs the size.
      return threads.call(operation, session, pending.mechanism, pending.key, data, operation === 'Verify' ? output : output.length);
    };
  }
  return calls as unknown as pkcs11js.PKCS11;
}
