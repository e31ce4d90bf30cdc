import * as path from 'node:path';
import { Worker, workerData } from 'node:worker_threads';
import * as pkcs11js from 'pkcs11js';

/** What a token thread (search-worker-thread.ts, crypto-thread.ts) needs to open the module. */
export interface TokenThreadSetup {
  module: string;
  libraryParameters?: string;
}

/**
 * On a token thread: its own pkcs11js instance on the library the main thread loaded. In one
 * process dlopen returns the library already loaded, so C_Initialize answers
 * CKR_CRYPTOKI_ALREADY_INITIALIZED, and sessions, login and object handles are the process's.
 * A thread never calls C_Finalize: that would end every session of the process.
 */
export function moduleOnThisThread(): pkcs11js.PKCS11 {
  const setup = workerData as TokenThreadSetup;
  const pkcs11 = new pkcs11js.PKCS11();
  pkcs11.load(setup.module);
  try {
    pkcs11.C_Initialize({ flags: pkcs11js.CKF_OS_LOCKING_OK, ...(setup.libraryParameters ? { libraryParameters: setup.libraryParameters } : {}) });
  } catch {
    // CKR_CRYPTOKI_ALREADY_INITIALIZED: the main thread initialised the module, as expected.
  }
  return pkcs11;
}

/**
 * On the main thread: starts the token thread `file` (a compiled file of this folder), or
 * adopts the one `ahead` booted for it, unreferenced so that an idle thread never keeps the
 * process alive. `gone` hears once that it failed or ended (its callers then fail what it had;
 * the next call starts a new thread).
 */
export function startTokenThread<Answer>(
  file: string,
  setup: TokenThreadSetup,
  answered: (answer: Answer) => void,
  gone: (err: Error) => void,
  what: string,
  ahead?: ThreadsAhead,
): Worker {
  const worker = ahead?.take(file, setup) ?? bootThread(file, setup);
  worker.on('message', answered);
  let ended = false;
  const end = (err: Error) => {
    if (ended) return;
    ended = true;
    gone(err);
  };
  worker.on('error', end);
  worker.on('exit', (code) => end(new Error(`${what} ended (exit code ${code})`)));
  return worker;
}

function bootThread(file: string, setup: TokenThreadSetup): Worker {
  const worker = new Worker(path.join(__dirname, file), { workerData: setup satisfies TokenThreadSetup });
  worker.unref();
  return worker;
}

/**
 * Token threads booted before their token is open. A thread's start-up (a new isolate, Node's
 * bootstrap, pkcs11js: ~65 ms of CPU) then runs on another core while the main thread loads
 * the metadata store; otherwise the token's first search and first signature waited for it.
 * A booted thread loads the module only with its first call, after the main thread has
 * initialised it. Threads nobody adopts end with close().
 */
export class ThreadsAhead {
  private readonly waiting = new Map<string, Worker>();

  boot(file: string, setup: TokenThreadSetup): void {
    const key = keyOf(file, setup);
    if (this.waiting.has(key)) return;
    const worker = bootThread(file, setup);
    // One that fails before it is adopted is not handed out: the token starts another.
    const failed = () => {
      if (this.waiting.get(key) === worker) this.waiting.delete(key);
    };
    worker.once('error', failed);
    worker.once('exit', failed);
    this.waiting.set(key, worker);
  }

  take(file: string, setup: TokenThreadSetup): Worker | undefined {
    const key = keyOf(file, setup);
    const worker = this.waiting.get(key);
    this.waiting.delete(key);
    return worker;
  }

  /** Ends the threads no token adopted. */
  close(): void {
    for (const worker of this.waiting.values()) void worker.terminate();
    this.waiting.clear();
  }
}

function keyOf(file: string, setup: TokenThreadSetup): string {
  return JSON.stringify([file, setup.module, setup.libraryParameters ?? null]);
}
