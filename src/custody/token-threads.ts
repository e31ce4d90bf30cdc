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
 * On the main thread: starts the token thread `file` (a compiled file of this folder),
 * unreferenced so that an idle thread never keeps the process alive. `gone` hears once that it
 * failed or ended (its callers then fail what it had; the next call starts a new thread).
 */
export function startTokenThread<Answer>(file: string, setup: TokenThreadSetup, answered: (answer: Answer) => void, gone: (err: Error) => void, what: string): Worker {
  const worker = new Worker(path.join(__dirname, file), { workerData: setup satisfies TokenThreadSetup });
  worker.unref();
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
