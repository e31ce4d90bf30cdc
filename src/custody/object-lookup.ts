import * as pkcs11js from 'pkcs11js';
import type { Logger } from 'pino';
import { readAttributes } from './attribute-reads';
import { ObjectWritesInFlight, type ObjectWrites } from './object-writes';
import type { Found } from './search-worker';
import type { SessionCopies } from './session-copies';
import type { ObjectHandle, Session } from './token';
import { creationTemplate } from './token-objects';

/**
 * Searches the token off the event loop (search-worker.ts); undefined when the module was
 * re-initialised during the search (the handles found belong to the instance that went).
 */
export type OffLoopSearch = (template: pkcs11js.Template, read?: number[]) => Promise<Found[] | undefined>;

/**
 * A lookup missed the handle cache on a token that searches off the event loop: Token.run
 * searches (searchAnswering) and runs the operation again from its start, when the lookup
 * finds the answer. Every operation looks its objects up before any token call that changes
 * something, so running it again repeats nothing.
 */
export class SearchNeeded extends Error {
  constructor(
    readonly key: string,
    readonly template: pkcs11js.Template,
  ) {
    super('a token object must be searched for off the event loop');
  }
}

/**
 * How a token's objects are found: C_FindObjects slows as keys grow, so handles are cached
 * for the life of the module instance (the token drops them when it re-initialises), and
 * with the profile's `sessionCopies` an operation computes with its session copy. A lookup
 * that finds nothing is remembered per session: the token's `run` decides from it whether a
 * module re-initialisation may bring the object back (SoftHSM2's stale view).
 *
 * With `offLoop` (profile `searchesOffEventLoop`) no search runs on the event loop: a lookup
 * that misses the cache refuses (SearchNeeded), and the answer of the search made for it is
 * kept for the rest of the operation's run on that session (a miss included: the object may
 * appear later, made by another process, so misses are never cached beyond that).
 */
export class ObjectLookup {
  private readonly handles = new Map<string, ObjectHandle>();
  private readonly missedOn = new WeakMap<Session, string>();
  /** Searches made off the event loop for the operation running on a session, by lookup. */
  private readonly answers = new WeakMap<Session, Map<string, ObjectHandle[]>>();
  /** Searches of one object running off the event loop: concurrent first uses of one key wait for one search. */
  private readonly searching = new Map<string, Promise<Found[] | undefined>>();
  /** Lookups that found several objects: all of them, in identity order (see inIdentityOrder); the first is cached. */
  private readonly several = new Map<string, ObjectHandle[]>();

  constructor(
    private readonly pkcs11: pkcs11js.PKCS11,
    private readonly copies: SessionCopies | undefined,
    private readonly log: Logger,
    private readonly writes?: ObjectWrites,
    private readonly offLoop?: OffLoopSearch,
  ) {}

  /** Finds the object of one class made by one creation (see token-objects.ts), caching the handle. */
  findCreation(session: Session, creationId: string, objectClass: number): ObjectHandle | undefined {
    return this.findCached(session, creationKey(objectClass, creationId), () => creationTemplate(creationId, objectClass));
  }

  /**
   * The object an operation computes with for one creation: its session copy when the profile
   * keeps them (session-copies.ts), otherwise the token object. Public keys are only read.
   */
  findForUse(session: Session, creationId: string, objectClass: number): ObjectHandle | undefined {
    const source = this.findCreation(session, creationId, objectClass);
    if (!source || !this.copies || objectClass === pkcs11js.CKO_PUBLIC_KEY) return source;
    return this.copies.usable(creationKey(objectClass, creationId), source);
  }

  /**
   * The object a creation just made: its handle is cached, so the process that made a key
   * never searches the token for it (C_FindObjects scans every object; on SoftHSM2 it also
   * waits for the creations in flight, see object-writes.ts).
   */
  created(creationId: string, objectClass: number, handle: ObjectHandle): void {
    this.handles.set(creationKey(objectClass, creationId), handle);
  }

  /**
   * A listing of the token's objects: each creation's object of each class is cached, unless
   * the listing holds several (those stay to the lookup, which warns and picks one).
   */
  listed(objects: ReadonlyArray<{ handle: ObjectHandle; creationId?: string; objectClass?: number }>): void {
    const found = new Map<string, ObjectHandle | null>();
    for (const { handle, creationId, objectClass } of objects) {
      if (creationId === undefined || objectClass === undefined) continue;
      const key = creationKey(objectClass, creationId);
      found.set(key, found.has(key) ? null : handle);
    }
    for (const [key, handle] of found) {
      if (handle) this.handles.set(key, handle);
      // Several objects appeared since this process cached one (made it, or found it alone):
      // the next use searches, so it knows them all (candidates) and orders them as others do.
      else if (!this.several.has(key)) this.handles.delete(key);
    }
  }

  /**
   * Every token object of one creation's class, in the order lookups choose from (the first
   * is the one new results are made with): for operations that can tell the right key by an
   * integrity check (AES-GCM's tag, RFC 5649's check block) when one creation id names
   * several objects. Undefined unless a lookup in this module instance found several.
   */
  candidates(creationId: string, objectClass: number): readonly ObjectHandle[] | undefined {
    return this.several.get(creationKey(objectClass, creationId));
  }

  /** As candidates, for material recorded before creation ids (found by label). */
  labelCandidates(label: string, objectClass: number): readonly ObjectHandle[] | undefined {
    return this.several.get(`${objectClass}:${label}`);
  }

  forgetCreation(creationId: string): void {
    const keys = [pkcs11js.CKO_SECRET_KEY, pkcs11js.CKO_PRIVATE_KEY, pkcs11js.CKO_PUBLIC_KEY].map((objectClass) => creationKey(objectClass, creationId));
    for (const key of keys) {
      this.handles.delete(key);
      this.several.delete(key);
    }
    this.copies?.forget(keys);
  }

  /** Finds a key object by label, caching the handle. */
  findObject(session: Session, label: string, objectClass: number): ObjectHandle | undefined {
    return this.findCached(session, `${objectClass}:${label}`, () => [
      { type: pkcs11js.CKA_LABEL, value: label },
      { type: pkcs11js.CKA_CLASS, value: objectClass },
    ]);
  }

  forgetObject(label: string, objectClass: number): void {
    this.handles.delete(`${objectClass}:${label}`);
    this.several.delete(`${objectClass}:${label}`);
  }

  /**
   * Token objects matching `template` (session objects, such as session copies, only when it
   * asks for CKA_TOKEN false): off the event loop when the profile says so, else on it.
   */
  async search(session: Session, template: pkcs11js.Template): Promise<ObjectHandle[]> {
    if (!this.offLoop) return this.findAll(session, template);
    return (await this.offLoopOrFail(template)).map((f) => f.handle);
  }

  /** As search, with the attributes `read` names read from every object found (listings), in the same place. */
  async searchReading(session: Session, template: pkcs11js.Template, read: number[]): Promise<Array<Required<Found>>> {
    if (!this.offLoop) return this.findAll(session, template).map((handle) => ({ handle, values: readAttributes(this.pkcs11, session, handle, read) }));
    return (await this.offLoopOrFail(template, read)).map((f) => ({ handle: f.handle, values: f.values ?? read.map(() => undefined) }));
  }

  private async offLoopOrFail(template: pkcs11js.Template, read?: number[]): Promise<Found[]> {
    const found = await this.offLoop!(tokenObjects(template), read);
    // Only a request that outlived its deadline still runs across a re-initialisation; it fails.
    if (!found) throw new Error('the token module was re-initialised during a search');
    return found;
  }

  /**
   * Runs `operation` on `session`; each time a lookup in it refuses (SearchNeeded), makes that
   * search off the event loop and runs it again. Concurrent lookups of one object share a search.
   */
  searchAnswering<T>(session: Session, operation: () => Promise<T> | T): Promise<T> {
    // The request path (every handle cached) costs one promise here, no async frame.
    let first: Promise<T>;
    try {
      first = Promise.resolve(operation());
    } catch (err) {
      first = Promise.reject(err);
    }
    return first.catch((err: unknown) => this.searchAndRunAgain(session, operation, err));
  }

  private async searchAndRunAgain<T>(session: Session, operation: () => Promise<T> | T, refusal: unknown): Promise<T> {
    for (let err = refusal; ; ) {
      if (!(err instanceof SearchNeeded) || !this.offLoop) throw err;
      const need = err;
      let search = this.searching.get(need.key);
      if (!search) {
        search = this.offLoop(tokenObjects(need.template)).finally(() => this.searching.delete(need.key));
        this.searching.set(need.key, search);
      }
      const found = await search;
      // Found in a module instance that is gone: searched anew.
      if (!found) continue;
      let answers = this.answers.get(session);
      if (!answers) this.answers.set(session, (answers = new Map()));
      answers.set(need.key, found.map((f) => f.handle));
      try {
        return await operation();
      } catch (next) {
        err = next;
      }
    }
  }

  /** Token objects matching `template`, searched on the event loop (profiles without `searchesOffEventLoop`). */
  findAll(session: Session, template: pkcs11js.Template): ObjectHandle[] {
    if (this.writes?.busy) throw new ObjectWritesInFlight();
    this.pkcs11.C_FindObjectsInit(session, tokenObjects(template));
    try {
      const out: ObjectHandle[] = [];
      for (;;) {
        const batch = this.pkcs11.C_FindObjects(session, 256);
        out.push(...batch);
        if (batch.length < 256) return out;
      }
    } finally {
      this.pkcs11.C_FindObjectsFinal(session);
    }
  }

  /** An operation starts on `session`: no lookup of it has missed yet, none has been answered. */
  startOn(session: Session): void {
    this.missedOn.delete(session);
    this.answers.delete(session);
  }

  /** The lookup that found nothing during the operation on `session`, if one did. */
  missOn(session: Session): string | undefined {
    return this.missedOn.get(session);
  }

  /** Cached handles may be stale (another process changed the token's objects). */
  dropHandles(): void {
    this.handles.clear();
    this.several.clear();
  }

  /** The module instance is going: handles and session copies with it. */
  dropAll(): void {
    this.handles.clear();
    this.several.clear();
    this.copies?.clear();
  }

  /** `templateOf` is called only when the handle is not cached: every key use comes here. */
  private findCached(session: Session, cacheKey: string, templateOf: () => pkcs11js.Template): ObjectHandle | undefined {
    const cached = this.handles.get(cacheKey);
    if (cached) return cached;
    const template = templateOf();
    const found = this.offLoop ? this.answers.get(session)?.get(cacheKey) : this.findAll(session, template);
    if (!found) throw new SearchNeeded(cacheKey, template);
    if (found.length === 0) {
      this.missedOn.set(session, cacheKey);
      return undefined;
    }
    if (found.length === 1) {
      this.several.delete(cacheKey);
      this.handles.set(cacheKey, found[0]);
      return found[0];
    }
    // Material from before creation ids, or an object copied in from outside: the token lists
    // them in an order that changes between restarts, so the choice follows the keys instead.
    const ordered = inIdentityOrder(this.pkcs11, session, found);
    this.log.warn({ object: cacheKey, count: found.length }, 'several token objects match one lookup: new results use the first in key check value order, decryption tries each (docs/key-custody.md)');
    this.several.set(cacheKey, ordered);
    this.handles.set(cacheKey, ordered[0]);
    return ordered[0];
  }
}

/** What tells keys apart without revealing them: a secret key's check value, a key pair's public half. */
const IDENTITY = [pkcs11js.CKA_CHECK_VALUE, pkcs11js.CKA_MODULUS, pkcs11js.CKA_EC_POINT];

/**
 * `objects` in an order every process and every restart agrees on: by the attributes that
 * identify each key (IDENTITY). Objects the token tells nothing of (an EC private key) keep the
 * token's order among themselves.
 */
function inIdentityOrder(pkcs11: pkcs11js.PKCS11, session: Session, objects: readonly ObjectHandle[]): ObjectHandle[] {
  const identity = (handle: ObjectHandle) =>
    readAttributes(pkcs11, session, handle, IDENTITY)
      .map((value) => value?.toString('hex') ?? '')
      .join('/');
  return objects
    .map((handle) => ({ handle, identity: identity(handle) }))
    .sort((a, b) => (a.identity < b.identity ? -1 : a.identity > b.identity ? 1 : 0))
    .map((o) => o.handle);
}

/** `template` limited to token objects unless it says otherwise. */
function tokenObjects(template: pkcs11js.Template): pkcs11js.Template {
  return template.some((a) => a.type === pkcs11js.CKA_TOKEN) ? template : [...template, { type: pkcs11js.CKA_TOKEN, value: true }];
}

/** The cache key of one creation's object of one class (handles here, copies in session-copies.ts). */
function creationKey(objectClass: number, creationId: string): string {
  return `${objectClass}#${creationId}`;
}

