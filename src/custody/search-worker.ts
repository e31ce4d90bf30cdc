import type { Worker } from 'node:worker_threads';
import type * as pkcs11js from 'pkcs11js';
import { boundCalls } from './bound-calls';
import type { FoundObject, SearchAnswer, SearchRequest } from './search-worker-thread';
import type { TokenObserver } from './token';
import { startTokenThread, type ThreadsAhead } from './token-threads';

/** The compiled file the search thread runs. */
export const SEARCH_THREAD_FILE = 'search-worker-thread.js';

/** An object found, with the attributes read from it when asked (undefined: it has none of that type). */
export interface Found {
  handle: Buffer;
  values?: Array<Buffer | undefined>;
}

/**
 * Token searches (C_FindObjectsInit, C_FindObjects, C_FindObjectsFinal) on a worker thread
 * of their own (profile setting `searchesOffEventLoop`). A search reads every object of the
 * token, ~30 µs each on SoftHSM2 (3 s at 100,000 objects): on the event loop it would stall
 * every other request of the process meanwhile. pkcs11js has no asynchronous C_FindObjects,
 * so the thread makes the calls synchronously on a session of its own (search-worker-thread.ts)
 * and hands back the handles, which are valid in the whole process.
 *
 * Searches run one at a time, in order. The thread starts with the first search (or warmUp)
 * and is unreferenced while idle, so it never keeps the process alive.
 */
export class SearchWorker {
  private worker: Worker | undefined;
  private nextId = 1;
  private readonly pending = new Map<number, { generation: number; resolve: (found: Found[]) => void; reject: (err: Error) => void }>();
  /** The session the thread searches on, once it has reported one, and the module instance it belongs to. */
  private threadSession: { handle: Buffer; generation: number } | undefined;

  constructor(
    /** The main thread's module: it closes the thread's session (handles are process-wide). */
    private readonly pkcs11: pkcs11js.PKCS11,
    private readonly module: string,
    private readonly libraryParameters: string | undefined,
    /** Where a thread booted before the token opened waits (Token.bootThreads). */
    private readonly ahead?: ThreadsAhead,
  ) {}

  /** Module instances gone so far (dropSession): handles found in an earlier one are stale. */
  private moduleGeneration = 0;

  get generation(): number {
    return this.moduleGeneration;
  }

  /** What `search` found, or undefined when the module was re-initialised meanwhile: those handles belong to the instance that went. */
  async unlessReinitialised(search: () => Promise<Found[]>): Promise<Found[] | undefined> {
    const generation = this.moduleGeneration;
    const found = await search();
    return generation === this.moduleGeneration ? found : undefined;
  }

  /** Starts the thread ahead of the first search, so that its start-up overlaps the caller's work. */
  warmUp(): void {
    this.thread();
  }

  /** Searches running or queued. */
  get busy(): boolean {
    return this.pending.size > 0;
  }

  /** The token objects of `slot` matching `template`, found on the worker thread, with the attributes `read` names read from each. */
  search(slot: Buffer, template: pkcs11js.Template, read?: number[]): Promise<Found[]> {
    const worker = this.thread();
    const id = this.nextId++;
    const generation = this.moduleGeneration;
    if (this.pending.size === 0) worker.ref();
    return new Promise<Found[]>((resolve, reject) => {
      this.pending.set(id, { generation, resolve, reject });
      worker.postMessage({ id, generation, slot, template, ...(read ? { read } : {}) } satisfies SearchRequest);
    });
  }

  /**
   * The module instance is going (re-initialisation or close): the thread's session goes with
   * it, closed here while its number still names it. With a search still running on it (a
   * call past its deadline) it is left alone; the thread opens a new one for the next search.
   */
  dropSession(): void {
    if (this.threadSession && !this.busy) this.closeSession(this.threadSession.handle);
    this.threadSession = undefined;
    this.moduleGeneration++;
  }

  /** Closes the thread's session and ends the thread (token close, before the module is finalised). */
  close(): void {
    this.dropSession();
    const worker = this.worker;
    this.worker = undefined;
    void worker?.terminate();
  }

  private closeSession(session: Buffer): void {
    try {
      this.pkcs11.C_CloseSession(session);
    } catch {
      // Already gone with the module instance.
    }
  }

  private thread(): Worker {
    if (this.worker) return this.worker;
    const setup = { module: this.module, libraryParameters: this.libraryParameters };
    // A thread that failed or ended fails what it had; the next search starts a new one.
    const gone = (err: Error) => {
      if (this.worker !== worker) return;
      this.worker = undefined;
      this.threadSession = undefined;
      for (const { reject } of this.pending.values()) reject(err);
      this.pending.clear();
    };
    const worker = startTokenThread(SEARCH_THREAD_FILE, setup, (answer: SearchAnswer) => this.answered(answer), gone, 'the token search thread', this.ahead);
    this.worker = worker;
    return worker;
  }

  private answered(answer: SearchAnswer): void {
    const waiting = this.pending.get(answer.id);
    if (!waiting) return;
    this.pending.delete(answer.id);
    if (this.pending.size === 0) this.worker?.unref();
    const current = waiting.generation === this.moduleGeneration;
    if ('error' in answer) {
      // The thread gave that session up and opens another for its next search.
      if (answer.session && current && !this.busy) this.closeSession(Buffer.from(answer.session));
      if (this.threadSession && answer.session && this.threadSession.handle.equals(answer.session)) this.threadSession = undefined;
      waiting.reject(new Error(answer.error));
      return;
    }
    if (current) this.threadSession = { handle: Buffer.from(answer.session), generation: waiting.generation };
    waiting.resolve(answer.found.map(asFound));
  }
}

/**
 * `pkcs11` with one more call, `C_FindObjectsAsync(slot, template)`: a whole search on the
 * search thread, named as pkcs11js names its asynchronous calls, so the layers above it see it
 * like any call (fault injection; the observer times it as C_FindObjectsInit).
 */
export function withSearchThread(pkcs11: pkcs11js.PKCS11, thread: SearchWorker, observer?: TokenObserver): pkcs11js.PKCS11 {
  // A record of bound calls (the other wrappers' shape) is copied as it is: no second binding on the request path.
  const calls = Object.getPrototypeOf(pkcs11) === Object.prototype ? { ...(pkcs11 as unknown as Record<string, unknown>) } : boundCalls(pkcs11);
  calls.C_FindObjectsAsync = async (slot: Buffer, template: pkcs11js.Template, read?: number[]): Promise<Found[]> => {
    const started = performance.now();
    let failed = true;
    try {
      const found = await thread.search(slot, template, read);
      failed = false;
      return found;
    } finally {
      // Timed as the call that starts a search, whichever thread makes it: one per search either way.
      observer?.call('C_FindObjectsInit', (performance.now() - started) / 1000, failed);
    }
  };
  return calls as unknown as pkcs11js.PKCS11;
}

/** The search thread's call (withSearchThread) on a module that has it. */
export function searchOnThread(pkcs11: pkcs11js.PKCS11, slot: Buffer, template: pkcs11js.Template, read?: number[]): Promise<Found[]> {
  return (pkcs11 as unknown as { C_FindObjectsAsync: (slot: Buffer, template: pkcs11js.Template, read?: number[]) => Promise<Found[]> }).C_FindObjectsAsync(slot, template, read);
}

/** Structured cloning hands Buffers over as Uint8Arrays. */
function asFound(object: FoundObject): Found {
  const buffer = (bytes: Uint8Array) => Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  return { handle: buffer(object.handle), ...(object.values ? { values: object.values.map((v) => (v ? buffer(v) : undefined)) } : {}) };
}
