import { randomBytes } from 'node:crypto';
import * as pkcs11js from 'pkcs11js';
import type { ObjectHandle, RunOptions, Session, Token } from './token';

/**
 * Creation ids: every token object p11kms makes carries `p11kms#<creation id>` in CKA_ID,
 * written in the generate/unwrap/copy template itself, so even an object whose creation
 * was interrupted names the request that made it. A creation id is 16 random bytes (hex),
 * drawn once per creation and never reused: destroying by creation id can only ever hit the
 * objects of that one creation, unlike a label, which a concurrent request may also write.
 */
export const CREATION_ID_PREFIX = 'p11kms#';

export function newCreationId(): string {
  return randomBytes(16).toString('hex');
}

export function creationIdAttribute(creationId: string): Buffer {
  return Buffer.from(`${CREATION_ID_PREFIX}${creationId}`);
}

export function parseCreationId(id: Buffer | undefined): string | undefined {
  if (!id) return undefined;
  return /^p11kms#([0-9a-f]{32})$/.exec(id.toString('latin1'))?.[1];
}

/** Lookup template of the objects of one creation, optionally of one class. */
export function creationTemplate(creationId: string, objectClass?: number): pkcs11js.Template {
  return [
    { type: pkcs11js.CKA_ID, value: creationIdAttribute(creationId) },
    ...(objectClass === undefined ? [] : [{ type: pkcs11js.CKA_CLASS, value: objectClass }]),
  ];
}

/** One token object as reconciliation sees it. */
export interface TokenObjectInfo {
  handle: ObjectHandle;
  label: string;
  /** From CKA_ID `p11kms#…` (objects made since creation ids exist). */
  creationId?: string;
  /** CKA_CLASS, when the object has one. */
  objectClass?: number;
  /** Neither CKA_LABEL nor CKA_ID: the remains of a creation torn by a crash. */
  unmarked: boolean;
}

/**
 * Every token object with its label and creation id; attributes a torn object lacks read as
 * absent. Read where the search runs: with 100,000 objects the reads take seconds too.
 */
export async function listTokenObjects(token: Token, session: Session): Promise<TokenObjectInfo[]> {
  const out: TokenObjectInfo[] = [];
  for (const { handle, values } of await token.lookup.searchReading(session, [{ type: pkcs11js.CKA_TOKEN, value: true }], NAMING)) {
    const [label, id, objectClass] = values;
    out.push({
      handle,
      label: label ? label.toString('utf8') : '',
      creationId: parseCreationId(id),
      ...(objectClass ? { objectClass: ulongValue(objectClass) } : {}),
      unmarked: (label?.length ?? 0) === 0 && (id?.length ?? 0) === 0,
    });
  }
  return out;
}

/** Destroys every object of one creation; returns how many there were. */
export async function destroyCreation(token: Token, session: Session, creationId: string): Promise<number> {
  const handles = await token.lookup.search(session, creationTemplate(creationId));
  for (const handle of handles) token.pkcs11.C_DestroyObject(session, handle);
  token.lookup.forgetCreation(creationId);
  return handles.length;
}

/** What a listing reads of every object: label, CKA_ID, class. */
const NAMING = [pkcs11js.CKA_LABEL, pkcs11js.CKA_ID, pkcs11js.CKA_CLASS];

/** Run options of a creation: before it is tried again, whatever the failed try left under its id goes. */
export function retryingCreation(token: Token, creationId: string): RunOptions {
  return { beforeRetry: async (session) => void (await destroyCreation(token, session, creationId)) };
}

/** A CK_ULONG attribute value as pkcs11js returns it (the platform's unsigned long, little-endian here). */
export function ulongValue(value: Buffer): number {
  return value.length >= 8 ? Number(value.readBigUInt64LE(0)) : value.readUInt32LE(0);
}
