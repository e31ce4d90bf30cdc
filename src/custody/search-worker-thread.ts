import { parentPort } from 'node:worker_threads';
import * as pkcs11js from 'pkcs11js';
import { readAttributes } from './attribute-reads';
import { moduleOnThisThread } from './token-threads';

/**
 * The thread of search-worker.ts: its own pkcs11js instance on the same PKCS#11 library. In
 * one process dlopen returns the library already loaded, so this instance calls into the
 * module the main thread initialised: its C_Initialize answers CKR_CRYPTOKI_ALREADY_INITIALIZED,
 * its sessions share the application's login (PKCS#11 keeps login state per application), and
 * the object handles it finds are the process's. It never calls C_Finalize: that would end
 * every session of the process. The pkcs11js instance only dlcloses its own reference on exit.
 */

export interface SearchRequest {
  id: number;
  /** The main thread's module instance: a change means this thread's session died with the last one. */
  generation: number;
  slot: Uint8Array;
  template: pkcs11js.Template;
  /** Attributes to read from every object found (a listing), so the reads too stay off the event loop. */
  read?: number[];
}

/** One object found, with the attributes asked for (null: the object has none of that type). */
export interface FoundObject {
  handle: Uint8Array;
  values?: Array<Uint8Array | null>;
}

export type SearchAnswer = { id: number; session: Uint8Array; found: FoundObject[] } | { id: number; session?: Uint8Array; error: string };

/** Loaded on the first search: a thread booted ahead (ThreadsAhead) must not touch the module before the main thread has initialised it. */
let loaded: pkcs11js.PKCS11 | undefined;
const tokenModule = () => (loaded ??= moduleOnThisThread());

let session: { handle: Buffer; generation: number } | undefined;

function sessionFor(request: SearchRequest): Buffer {
  // A session of an earlier module instance is gone with it; its number may name a new session of the main thread now, so it is never closed here.
  if (session?.generation !== request.generation) session = { handle: tokenModule().C_OpenSession(Buffer.from(request.slot), pkcs11js.CKF_SERIAL_SESSION), generation: request.generation };
  return session.handle;
}

/** Structured cloning turns Buffers into Uint8Arrays; pkcs11js wants Buffers back. */
function asTemplate(template: pkcs11js.Template): pkcs11js.Template {
  return template.map(({ type, value }) => ({ type, value: value instanceof Uint8Array ? Buffer.from(value) : value }));
}

parentPort!.on('message', (request: SearchRequest) => {
  let handle: Buffer | undefined;
  try {
    const pkcs11 = tokenModule();
    handle = sessionFor(request);
    pkcs11.C_FindObjectsInit(handle, asTemplate(request.template));
    const handles: Buffer[] = [];
    try {
      for (;;) {
        const batch = pkcs11.C_FindObjects(handle, 256);
        handles.push(...batch);
        if (batch.length < 256) break;
      }
    } finally {
      pkcs11.C_FindObjectsFinal(handle);
    }
    const read = request.read;
    const found = read ? handles.map((object) => ({ handle: object, values: readAttributes(pkcs11, handle!, object, read).map((v) => v ?? null) })) : handles.map((object) => ({ handle: object }));
    parentPort!.postMessage({ id: request.id, session: handle, found } satisfies SearchAnswer);
  } catch (err) {
    // Whatever failed, the next search starts on a fresh session.
    session = undefined;
    parentPort!.postMessage({ id: request.id, ...(handle ? { session: handle } : {}), error: err instanceof Error ? err.message : String(err) } satisfies SearchAnswer);
  }
});
