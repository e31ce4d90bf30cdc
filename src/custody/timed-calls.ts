import * as pkcs11js from 'pkcs11js';
import type { TokenObserver } from './token';

/**
 * The module with every C_ function timed for `observer`. The wrappers are made once here, not
 * on each property read: several calls per request go through them.
 */
export function observed(module: pkcs11js.PKCS11, observer: TokenObserver): pkcs11js.PKCS11 {
  const calls: Record<string, unknown> = {};
  for (let o: object | null = module; o && o !== Object.prototype; o = Object.getPrototypeOf(o)) {
    for (const property of Object.getOwnPropertyNames(o)) {
      const value = (module as unknown as Record<string, unknown>)[property];
      if (Object.prototype.hasOwnProperty.call(calls, property) || typeof value !== 'function' || property === 'constructor') continue;
      // Native methods need the real module as `this`.
      if (!property.startsWith('C_')) {
        calls[property] = (value as (...a: unknown[]) => unknown).bind(module);
        continue;
      }
      const call = value as (...a: unknown[]) => unknown;
      const name = property.replace(/Async$/, '');
      calls[property] = (...args: unknown[]) => {
        const started = performance.now();
        let result: unknown;
        try {
          result = call.apply(module, args);
        } catch (err) {
          observer.call(name, (performance.now() - started) / 1000, true);
          throw err;
        }
        if (result instanceof Promise) {
          return result.then(
            (r) => (observer.call(name, (performance.now() - started) / 1000, false), r),
            (err: unknown) => (observer.call(name, (performance.now() - started) / 1000, true), Promise.reject(err)),
          );
        }
        observer.call(name, (performance.now() - started) / 1000, false);
        return result;
      };
    }
  }
  return calls as unknown as pkcs11js.PKCS11;
}

