import type * as pkcs11js from 'pkcs11js';
import { boundCalls } from './bound-calls';
import { createsTokenObject } from './synchronous-calls';

type Pkcs11 = pkcs11js.PKCS11;

/** The calls that can create a token object, with where their template(s) sit among the arguments. */
const CREATING_CALLS = {
  C_GenerateKeyAsync: [-1],
  C_GenerateKeyPairAsync: [-2, -1],
  C_UnwrapKeyAsync: [-1],
  C_DeriveKeyAsync: [-1],
} as const;

/** The same on the event loop: they must run through creatingOnLoop (see there). */
const CREATING_CALLS_ON_LOOP = {
  C_GenerateKey: [-1],
  C_GenerateKeyPair: [-2, -1],
  C_UnwrapKey: [-1],
  C_DeriveKey: [-1],
  C_CopyObject: [-1],
  C_CreateObject: [-1],
} as const;

/** A lookup refused because a token object is being written on another thread; ObjectWrites.lookingUp waits and runs the operation again. */
export class ObjectWritesInFlight extends Error {
  constructor() {
    super('a token object is being written on another thread');
  }
}

/**
 * Token-object creations running on libuv's pool, for a token whose lookups must not overlap
 * them (profile quirk `lookupsCorruptObjectsBeingWritten`).
 *
 * SoftHSM2 2.6.1's file store writes a new object's files in several steps, and C_FindObjects
 * re-reads every changed object file of the token while it matches. When that happens on
 * another thread of the same process between two steps, the new object's attributes held in
 * memory are replaced by an earlier version of its file, and the creation's last write puts
 * them on disk: measured here, a generated key stored with CKA_TOKEN false (a key no lookup
 * finds again, in this process or any other), and C_GenerateKey failing with
 * CKR_GENERAL_ERROR and leaving a file of defaults behind. Lookups run on the event loop and
 * creations on the pool, so the only way they meet is a lookup while a creation is in
 * flight: ObjectLookup refuses that (ObjectWritesInFlight), and lookingUp runs the operation
 * again once the creations in flight are done. Creations that would start while a lookup
 * waits are held until it has run, so a steady stream of creations (key pairs take the pool
 * for a long time) cannot starve lookups. Creations among themselves do not re-read each
 * other's files and stay parallel.
 */
export class ObjectWrites {
  private inFlight = 0;
  private readonly idleWaiters: Array<() => void> = [];
  /** Lookups waiting for the creations in flight to finish. */
  private waitingLookups = 0;
  private readonly heldCreations: Array<() => void> = [];
  /** Sessions whose request gave up (see abandon). */
  private readonly abandoned = new WeakSet<object>();
  /** Searches running on the search thread (search-worker.ts). */
  private searches = 0;
  /** Searches waiting for the creations held now to start (see searching). */
  private readonly searchesAfterHeld: Array<() => void> = [];

  get busy(): boolean {
    return this.inFlight > 0;
  }

  /**
   * Runs `operation`; when a lookup in it was refused, waits until no creation is in flight
   * and runs it again. Creations wait meanwhile, until the re-run has made its lookups (its
   * synchronous part: where every operation looks its objects up).
   */
  async lookingUp<T>(operation: () => Promise<T> | T): Promise<T> {
    for (let resumed = false; ; resumed = true) {
      let running: Promise<T> | T;
      try {
        running = operation();
      } catch (err) {
        running = Promise.reject(err);
      } finally {
        if (resumed) this.lookupResumed();
      }
      try {
        return await running;
      } catch (err) {
        if (!(err instanceof ObjectWritesInFlight)) throw err;
      }
      this.waitingLookups++;
      if (this.inFlight > 0) await new Promise<void>((resolve) => this.idleWaiters.push(resolve));
    }
  }

  /**
   * Runs a token search off the event loop (search-worker.ts) once no creation is in flight;
   * creations that would start meanwhile wait until it has answered.
   */
  async searching<T>(search: () => Promise<T>): Promise<T> {
    // Searches overlap one another (unlike lookups on the event loop): one arriving while
    // creations are held goes after them, or searches in a row would hold creations for ever.
    while (this.heldCreations.length > 0) await new Promise<void>((resolve) => this.searchesAfterHeld.push(resolve));
    this.waitingLookups++;
    try {
      while (this.inFlight > 0) await new Promise<void>((resolve) => this.idleWaiters.push(resolve));
      this.searches++;
      try {
        return await search();
      } finally {
        this.searches--;
      }
    } finally {
      this.lookupResumed();
    }
  }

  /**
   * Runs a call that creates a token object on the event loop (C_CopyObject, C_CreateObject,
   * the synchronous C_GenerateKey…) once no search runs on the search thread or waits to: a
   * search there could meet it as one on the pool meets a creation. Waiting is asynchronous;
   * the call itself is over before any other JavaScript runs, so no search can start under it.
   */
  async creatingOnLoop<T>(call: () => T): Promise<T> {
    while (this.waitingLookups > 0) await new Promise<void>((resolve) => this.heldCreations.push(resolve));
    return call();
  }

  /**
   * `pkcs11` with every call that creates a token object counted while it runs. Such a call
   * made on the event loop while a search runs on the search thread fails instead of racing it
   * (it belongs in creatingOnLoop).
   */
  tracking(pkcs11: Pkcs11): Pkcs11 {
    const calls = boundCalls(pkcs11);
    for (const [name, templates] of Object.entries(CREATING_CALLS)) {
      const call = calls[name] as (...args: unknown[]) => Promise<unknown>;
      calls[name] = (...args: unknown[]) => (templates.some((at) => createsTokenObject(args.at(at))) ? this.creation(args[0], () => call(...args)) : call(...args));
    }
    for (const [name, templates] of Object.entries(CREATING_CALLS_ON_LOOP)) {
      const call = calls[name] as (...args: unknown[]) => unknown;
      calls[name] = (...args: unknown[]) => {
        if (this.searches > 0 && templates.some((at) => createsTokenObject(args.at(at)))) throw new Error(`${name} would make a token object while a token search runs on the search thread`);
        return call(...args);
      };
    }
    return calls as unknown as Pkcs11;
  }

  /**
   * The request running on `session` has given up (Token.withDeadline): a creation it has
   * not started yet must never start. Its caller has already looked for the creation's
   * objects to destroy them and found none, so an object made now would be one nothing names.
   */
  abandon(session: object): void {
    this.abandoned.add(session);
  }

  private async creation<T>(session: unknown, start: () => Promise<T>): Promise<T> {
    while (this.waitingLookups > 0) await new Promise<void>((resolve) => this.heldCreations.push(resolve));
    if (typeof session === 'object' && session !== null && this.abandoned.has(session)) throw new Error('the request gave up before this token-object creation started');
    this.inFlight++;
    try {
      return await start();
    } finally {
      if (--this.inFlight === 0) for (const wake of this.idleWaiters.splice(0)) wake();
    }
  }

  private lookupResumed(): void {
    if (--this.waitingLookups > 0) return;
    // The held creations first: they are in flight before the searches behind them look.
    for (const release of this.heldCreations.splice(0)) release();
    for (const wake of this.searchesAfterHeld.splice(0)) wake();
  }
}
