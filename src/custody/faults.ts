import * as fs from 'node:fs';
import type * as pkcs11js from 'pkcs11js';
import type { Logger } from 'pino';

/**
 * Test-only fault injection at the PKCS#11 boundary (docs/key-custody.md, "Fault injection").
 * Enabled only when NODE_ENV is `test` and P11KMS_TEST_FAULTS names a JSON file; otherwise the
 * module is used untouched. The file is re-read whenever it changes, so a test switches faults
 * on and off while the service runs:
 *
 *   [{ "call": "C_GenerateKeyAsync", "ckr": "CKR_GENERAL_ERROR", "times": 2 },
 *    { "call": "C_GenerateKeyAsync", "ckr": "CKR_GENERAL_ERROR", "after": true },
 *    { "call": "C_EncryptAsync", "hang": true }]
 *
 * `ckr` fails the call with that return code (before the call; with `after`, once the real
 * call has done its work, like a device that made an object but reported an error); `hang`
 * makes an asynchronous call never answer (with `after`: once the real call has done its work,
 * and only then is the injection logged, so a test can kill the process at that very point); `hold`
 * makes an asynchronous call wait until the fault file next changes and then run (with `after`:
 * run, then answer once the file changes), a device answering late; `empty` makes C_FindObjects find nothing (SoftHSM2
 * 2.6.1 hides an object it read half-written for good; `C_FindObjectsAsync` is a whole search on
 * the search thread of a profile with `searchesOffEventLoop`, see search-worker.ts). `times` (default 1) counts injections;
 * `untilInitialize` keeps a rule until the module is initialised again (C_Initialize) instead.
 * The counters restart when the file changes. Every injection is logged ("injected token fault").
 */
export interface FaultRule {
  call: string;
  ckr?: string;
  after?: boolean;
  hang?: boolean;
  hold?: boolean;
  empty?: boolean;
  times?: number;
  untilInitialize?: boolean;
}

export function faultsFromEnvironment(env: NodeJS.ProcessEnv): string | undefined {
  return env.NODE_ENV === 'test' && env.P11KMS_TEST_FAULTS ? env.P11KMS_TEST_FAULTS : undefined;
}

/** Wraps a PKCS#11 module so calls named in the fault file fail or hang as the file says. */
export function withFaults(pkcs11: pkcs11js.PKCS11, file: string, log: Logger): pkcs11js.PKCS11 {
  let loadedFrom = '';
  let rules: Array<FaultRule & { left: number }> = [];
  const current = () => {
    let text = '[]';
    try {
      text = fs.readFileSync(file, 'utf8');
    } catch {
      // No file: no faults.
    }
    if (text !== loadedFrom) {
      loadedFrom = text;
      rules = (JSON.parse(text || '[]') as FaultRule[]).map((r) => ({ ...r, left: r.untilInitialize ? Infinity : (r.times ?? 1) }));
    }
    return rules;
  };
  /** Settles once the fault file's content differs from now (checked every 20 ms). */
  const fileChanged = () => {
    const heldWith = loadedFrom;
    return new Promise<void>((resolve) => {
      const poll = setInterval(() => {
        current();
        if (loadedFrom === heldWith) return;
        clearInterval(poll);
        resolve();
      }, 20);
    });
  };
  log.warn({ file }, 'token fault injection is enabled (tests only)');
  return new Proxy(pkcs11, {
    get(target, property, receiver) {
      const value = Reflect.get(target, property, receiver) as unknown;
      if (typeof value !== 'function' || typeof property !== 'string' || !property.startsWith('C_')) return value;
      return (...args: unknown[]) => {
        if (property === 'C_Initialize') for (const r of current()) if (r.untilInitialize) r.left = 0;
        const rule = current().find((r) => r.call === property && r.left > 0);
        if (!rule) return (value as (...a: unknown[]) => unknown).apply(target, args);
        rule.left--;
        if (rule.hold) {
          log.warn({ call: property, hold: true, after: rule.after ?? false }, 'injected token fault');
          const call = () => (value as (...a: unknown[]) => Promise<unknown>).apply(target, args);
          return rule.after ? call().then((answer) => fileChanged().then(() => answer)) : fileChanged().then(call);
        }
        if (rule.hang && rule.after) {
          return (value as (...a: unknown[]) => Promise<unknown>).apply(target, args).then(() => {
            log.warn({ call: property, hang: true, after: true }, 'injected token fault');
            return new Promise(() => undefined);
          });
        }
        log.warn({ call: property, ckr: rule.ckr, hang: rule.hang ?? false, after: rule.after ?? false, empty: rule.empty ?? false }, 'injected token fault');
        const asynchronous = property.endsWith('Async');
        if (rule.hang) return new Promise(() => undefined);
        if (rule.empty) return asynchronous ? Promise.resolve([]) : [];
        // Shaped like a pkcs11js error: the CKR name first, the function in `method`.
        const failure = Object.assign(new Error(`${rule.ckr ?? 'CKR_GENERAL_ERROR'}: injected`), { method: property });
        if (!rule.after) {
          if (asynchronous) return Promise.reject(failure);
          throw failure;
        }
        const result = (value as (...a: unknown[]) => unknown).apply(target, args);
        if (asynchronous) {
          return (result as Promise<unknown>).then(() => {
            throw failure;
          });
        }
        throw failure;
      };
    },
  });
}
