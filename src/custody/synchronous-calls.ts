import * as pkcs11js from 'pkcs11js';
import { boundCalls } from './bound-calls';

type Pkcs11 = pkcs11js.PKCS11;

/**
 * For an in-process software token only (profile setting `synchronousMechanisms`): the
 * `*Async` calls of the listed mechanisms run synchronously on the calling thread. pkcs11js's
 * async calls hop to the libuv pool and back, which costs more CPU than a short SoftHSM2
 * operation itself (AES-GCM on 32 bytes: ~12–30 µs of CPU in the token, ~20 µs more for the
 * hop, measured on this machine) and queues requests behind the pool. A network HSM can take
 * milliseconds per call, so no hardware profile lists any mechanism here: for those this
 * function is never called and every call stays on the pool.
 *
 * Callers are unchanged: they still call `C_EncryptAsync` etc. and await a promise; a
 * failure still arrives as a rejected promise carrying the same pkcs11js error. The mechanism
 * of a one-shot call (C_Encrypt, C_Sign…) is the one its session was initialised with.
 */
export function withSynchronousMechanisms(pkcs11: Pkcs11, mechanisms: ReadonlySet<number>): Pkcs11 {
  const calls = boundCalls(pkcs11);
  /** The mechanism each session's current operation was initialised with. */
  const initialised = new WeakMap<Buffer, number>();
  const sync = (mechanism: number | undefined) => mechanism !== undefined && mechanisms.has(mechanism);
  const settle = <T>(run: () => T): Promise<T> => {
    try {
      return Promise.resolve(run());
    } catch (err) {
      return Promise.reject(err);
    }
  };
  for (const op of ['Encrypt', 'Decrypt', 'Sign', 'Verify'] as const) {
    const init = calls[`C_${op}Init`] as (session: Buffer, mechanism: pkcs11js.Mechanism, key: Buffer) => void;
    calls[`C_${op}Init`] = (session: Buffer, mechanism: pkcs11js.Mechanism, key: Buffer) => {
      init(session, mechanism, key);
      initialised.set(session, mechanism.mechanism);
    };
    const once = calls[`C_${op}`] as (...args: unknown[]) => unknown;
    const onPool = calls[`C_${op}Async`] as (...args: unknown[]) => Promise<unknown>;
    calls[`C_${op}Async`] = (session: Buffer, ...rest: unknown[]) => (sync(initialised.get(session)) ? settle(() => once(session, ...rest)) : onPool(session, ...rest));
  }
  for (const op of ['GenerateKey', 'WrapKey', 'UnwrapKey', 'DeriveKey'] as const) {
    const once = calls[`C_${op}`] as (...args: unknown[]) => unknown;
    const onPool = calls[`C_${op}Async`] as (...args: unknown[]) => Promise<unknown>;
    // A call that creates a token object writes files (milliseconds): it stays on the pool.
    calls[`C_${op}Async`] = (session: Buffer, mechanism: pkcs11js.Mechanism, ...rest: unknown[]) =>
      sync(mechanism.mechanism) && !createsTokenObject(rest.at(-1)) ? settle(() => once(session, mechanism, ...rest)) : onPool(session, mechanism, ...rest);
  }
  return calls as unknown as Pkcs11;
}

/** Whether a call's template makes a token object (CKA_TOKEN true) rather than a session object. */
export function createsTokenObject(template: unknown): boolean {
  return Array.isArray(template) && template.some((a: pkcs11js.Attribute) => a.type === pkcs11js.CKA_TOKEN && a.value === true);
}

/** Mechanism numbers of a profile setting's mechanism names (pkcs11js constant names). */
export function mechanismNumbers(names: readonly string[], profile: string, setting = 'synchronousMechanisms'): Set<number> {
  const out = new Set<number>();
  for (const name of names) {
    const value = (pkcs11js as unknown as Record<string, unknown>)[name];
    if (!name.startsWith('CKM_') || typeof value !== 'number') throw new Error(`HSM profile ${profile}: ${setting} names an unknown mechanism '${name}'`);
    out.add(value);
  }
  return out;
}
