import type * as pkcs11js from 'pkcs11js';

/**
 * Every `C_*` function of a pkcs11js module bound to it, as a record a wrapper can replace
 * some entries of and hand on as the module (synchronous-calls.ts, object-writes.ts). pkcs11js
 * methods are native and need the real module as `this`; a Proxy would do the same at the
 * cost of a trap on every call of the request path.
 */
export function boundCalls(pkcs11: pkcs11js.PKCS11): Record<string, unknown> {
  const calls: Record<string, unknown> = {};
  for (let o: object | null = pkcs11; o && o !== Object.prototype; o = Object.getPrototypeOf(o)) {
    for (const name of Object.getOwnPropertyNames(o)) {
      const value = (pkcs11 as unknown as Record<string, unknown>)[name];
      if (!(name in calls) && name.startsWith('C_') && typeof value === 'function') calls[name] = value.bind(pkcs11);
    }
  }
  return calls;
}
