import * as pkcs11js from 'pkcs11js';
import type { Logger } from 'pino';
import { ObjectWritesInFlight, type ObjectWrites } from './object-writes';
import type { SessionCopies } from './session-copies';
import type { ObjectHandle, Session } from './token';
import { creationTemplate } from './token-objects';

/**
 * How a token's objects are found: C_FindObjects slows as keys grow, so handles are cached
 * for the life of the module instance (the token drops them when it re-initialises), and
 * with the profile's `sessionCopies` an operation computes with its session copy. A lookup
 * that finds nothing is remembered per session: the token's `run` decides from it whether a
 * module re-initialisation may bring the object back (SoftHSM2's stale view).
 */
export class ObjectLookup {
  private readonly handles = new Map<string, ObjectHandle>();
  private readonly missedOn = new WeakMap<Session, string>();

  constructor(
    private readonly pkcs11: pkcs11js.PKCS11,
    private readonly copies: SessionCopies | undefined,
    private readonly log: Logger,
    private readonly writes?: ObjectWrites,
  ) {}

  /** Finds the object of one class made by one creation (see token-objects.ts), caching the handle. */
  findCreation(session: Session, creationId: string, objectClass: number): ObjectHandle | undefined {
    return this.findCached(session, creationKey(objectClass, creationId), creationTemplate(creationId, objectClass));
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
    for (const [key, handle] of found) if (handle) this.handles.set(key, handle);
  }

  forgetCreation(creationId: string): void {
    const keys = [pkcs11js.CKO_SECRET_KEY, pkcs11js.CKO_PRIVATE_KEY, pkcs11js.CKO_PUBLIC_KEY].map((objectClass) => creationKey(objectClass, creationId));
    for (const key of keys) this.handles.delete(key);
    this.copies?.forget(keys);
  }

  /** Finds a key object by label, caching the handle. */
  findObject(session: Session, label: string, objectClass: number): ObjectHandle | undefined {
    return this.findCached(session, `${objectClass}:${label}`, [
      { type: pkcs11js.CKA_LABEL, value: label },
      { type: pkcs11js.CKA_CLASS, value: objectClass },
    ]);
  }

  forgetObject(label: string, objectClass: number): void {
    this.handles.delete(`${objectClass}:${label}`);
  }

  /** Token objects matching `template` (session objects, such as session copies, only when it asks for CKA_TOKEN false). */
  findAll(session: Session, template: pkcs11js.Template): ObjectHandle[] {
    if (this.writes?.busy) throw new ObjectWritesInFlight();
    const tokenObjects = template.some((a) => a.type === pkcs11js.CKA_TOKEN) ? template : [...template, { type: pkcs11js.CKA_TOKEN, value: true }];
    this.pkcs11.C_FindObjectsInit(session, tokenObjects);
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

  /** An operation starts on `session`: no lookup of it has missed yet. */
  startOn(session: Session): void {
    this.missedOn.delete(session);
  }

  /** The lookup that found nothing during the operation on `session`, if one did. */
  missOn(session: Session): string | undefined {
    return this.missedOn.get(session);
  }

  /** Cached handles may be stale (another process changed the token's objects). */
  dropHandles(): void {
    this.handles.clear();
  }

  /** The module instance is going: handles and session copies with it. */
  dropAll(): void {
    this.handles.clear();
    this.copies?.clear();
  }

  private findCached(session: Session, cacheKey: string, template: pkcs11js.Template): ObjectHandle | undefined {
    const cached = this.handles.get(cacheKey);
    if (cached) return cached;
    const found = this.findAll(session, template);
    if (found.length === 0) {
      this.missedOn.set(session, cacheKey);
      return undefined;
    }
    if (found.length > 1) this.log.warn({ object: cacheKey, count: found.length }, 'several token objects match one lookup');
    this.handles.set(cacheKey, found[0]);
    return found[0];
  }
}

/** The cache key of one creation's object of one class (handles here, copies in session-copies.ts). */
function creationKey(objectClass: number, creationId: string): string {
  return `${objectClass}#${creationId}`;
}

