import { parentPort } from 'node:worker_threads';
import type * as pkcs11js from 'pkcs11js';
import { moduleOnThisThread } from './token-threads';

/**
 * A thread of crypto-threads.ts, on the module the main thread loaded (moduleOnThisThread). It
 * opens no session: each call runs on the session the main thread leased for the operation,
 * which nothing else uses meanwhile.
 */

export type OneShotOperation = 'Encrypt' | 'Decrypt' | 'Sign' | 'Verify';

export interface OneShotRequest {
  id: number;
  operation: OneShotOperation;
  session: Uint8Array;
  mechanism: pkcs11js.Mechanism;
  key: Uint8Array;
  data: Uint8Array;
  /** Encrypt, Decrypt, Sign: the size of the output buffer; Verify: the signature. */
  output: number | Uint8Array;
}

/** What the calls answered, and how long C_xInit and C_x took (the main thread times them as its own calls). */
export type OneShotAnswer = { id: number; initMs: number; callMs: number } & (
  | { output: Uint8Array | boolean }
  | { error: string; code: number; method: string; failedAt: 'init' | 'call' }
);

const asBuffer = (bytes: Uint8Array) => Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);

/** Structured cloning turns the Buffers of a mechanism's parameter (OAEP source data…) into Uint8Arrays; pkcs11js wants Buffers. */
function asMechanism(mechanism: pkcs11js.Mechanism): pkcs11js.Mechanism {
  const parameter = mechanism.parameter as unknown;
  if (parameter instanceof Uint8Array) return { ...mechanism, parameter: asBuffer(parameter) };
  if (!parameter || typeof parameter !== 'object') return mechanism;
  const fields: Record<string, unknown> = {};
  for (const [name, value] of Object.entries(parameter)) fields[name] = value instanceof Uint8Array ? asBuffer(value) : value;
  return { ...mechanism, parameter: fields as unknown as pkcs11js.Mechanism['parameter'] };
}

type Init = (session: Buffer, mechanism: pkcs11js.Mechanism, key: Buffer) => void;
type Call = (session: Buffer, data: Buffer, output: Buffer) => Buffer | boolean;
/** The module's calls, bound on the first request: a thread booted ahead (ThreadsAhead) loads the module only then. */
let calls: Record<OneShotOperation, { init: Init; call: Call }> | undefined;
function callsOf(pkcs11: pkcs11js.PKCS11): Record<OneShotOperation, { init: Init; call: Call }> {
  return {
    Encrypt: { init: pkcs11.C_EncryptInit.bind(pkcs11), call: pkcs11.C_Encrypt.bind(pkcs11) },
    Decrypt: { init: pkcs11.C_DecryptInit.bind(pkcs11), call: pkcs11.C_Decrypt.bind(pkcs11) },
    Sign: { init: pkcs11.C_SignInit.bind(pkcs11), call: pkcs11.C_Sign.bind(pkcs11) },
    Verify: { init: pkcs11.C_VerifyInit.bind(pkcs11), call: pkcs11.C_Verify.bind(pkcs11) as unknown as Call },
  };
}

parentPort!.on('message', (request: OneShotRequest) => {
  const { init, call } = (calls ??= callsOf(moduleOnThisThread()))[request.operation];
  const session = asBuffer(request.session);
  const started = performance.now();
  let initMs = 0;
  try {
    init(session, asMechanism(request.mechanism), asBuffer(request.key));
  } catch (err) {
    initMs = performance.now() - started;
    parentPort!.postMessage({ id: request.id, initMs, callMs: 0, ...failure(err, 'init') } satisfies OneShotAnswer);
    return;
  }
  initMs = performance.now() - started;
  const output = typeof request.output === 'number' ? Buffer.alloc(request.output) : asBuffer(request.output);
  try {
    const answer = call(session, asBuffer(request.data), output);
    parentPort!.postMessage({ id: request.id, initMs, callMs: performance.now() - started - initMs, output: answer } satisfies OneShotAnswer);
  } catch (err) {
    parentPort!.postMessage({ id: request.id, initMs, callMs: performance.now() - started - initMs, ...failure(err, 'call') } satisfies OneShotAnswer);
  }
});

/** A pkcs11js error as the main thread rebuilds it: its message starts with the CKR name. */
function failure(err: unknown, failedAt: 'init' | 'call') {
  const { message, code, method } = err as { message?: string; code?: number; method?: string };
  return { error: String(message ?? err), code: code ?? 0, method: method ?? '', failedAt };
}
