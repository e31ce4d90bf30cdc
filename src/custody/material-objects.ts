import * as pkcs11js from 'pkcs11js';
import { KmsError } from '../errors';
import type { ObjectNaming } from './key-templates';
import type { Session, Token } from './token';
import { creationIdAttribute, destroyCreation, listTokenObjects, type TokenObjectInfo } from './token-objects';

/**
 * Names one piece of key material inside the token. The label is what
 * `pkcs11-tool --list-objects` shows: `p11kms:<key id>:v<material version>`. Objects are
 * found by their creation id (CKA_ID, see token-objects.ts); material recorded before
 * creation ids existed has none and is found by label.
 */
export interface MaterialRef {
  keyId: string;
  version: number;
  creationId?: string;
}

/** Material about to be made: it always has a creation id. */
export type NewMaterialRef = MaterialRef & { creationId: string };

/** Label and CKA_ID of new material (also used for imported material). */
export function materialNaming(ref: NewMaterialRef): ObjectNaming {
  return { label: materialLabel(ref), id: creationIdAttribute(ref.creationId) };
}

export const MATERIAL_LABEL_PREFIX = 'p11kms:';

export function materialLabel(ref: MaterialRef): string {
  return `${MATERIAL_LABEL_PREFIX}${ref.keyId}:v${ref.version}`;
}

export function parseMaterialLabel(label: string): MaterialRef | undefined {
  const match = /^p11kms:([0-9a-f-]{36}|mrk-[0-9a-f]{32}):v(\d+)$/.exec(label);
  return match ? { keyId: match[1], version: Number(match[2]) } : undefined;
}

/** Security attributes of a token object, as read back from the token. */
export interface MaterialAttributes {
  token: boolean;
  sensitive: boolean;
  extractable: boolean;
  alwaysSensitive: boolean;
  neverExtractable: boolean;
}

/** Finding, reading and destroying the token objects of master-key material. */
export class MaterialObjects {
  constructor(private readonly token: Token) {}

  /**
   * Destroys the material: exactly the objects of its creation, or for material recorded
   * before creation ids, the objects with its label. Returns false when there were none.
   */
  async destroy(ref: MaterialRef): Promise<boolean> {
    return this.token.run('destroy key', async (session) => {
      if (ref.creationId) return (await destroyCreation(this.token, session, ref.creationId)) > 0;
      const label = materialLabel(ref);
      const handles = await this.token.lookup.search(session, [{ type: pkcs11js.CKA_LABEL, value: label }]);
      for (const handle of handles) this.token.pkcs11.C_DestroyObject(session, handle);
      // A key pair is two objects under one label.
      for (const objectClass of [pkcs11js.CKO_SECRET_KEY, pkcs11js.CKO_PRIVATE_KEY, pkcs11js.CKO_PUBLIC_KEY]) this.token.lookup.forgetObject(label, objectClass);
      return handles.length > 0;
    });
  }

  /** Destroys whatever one creation made (a creation that failed or lost a race); returns the object count. */
  async destroyCreation(creationId: string): Promise<number> {
    return this.token.run('destroy created objects', (session) => destroyCreation(this.token, session, creationId));
  }

  async exists(ref: MaterialRef): Promise<boolean> {
    return this.token.run('find key', async (session) => {
      const template = ref.creationId ? [{ type: pkcs11js.CKA_ID, value: creationIdAttribute(ref.creationId) }] : [{ type: pkcs11js.CKA_LABEL, value: materialLabel(ref) }];
      return (await this.token.lookup.search(session, template)).length > 0;
    });
  }

  /**
   * Whether a request would find the material. Unlike `exists`, a lookup that finds nothing
   * first gets the token's one module re-initialisation (Token.run): SoftHSM2 hides for good an
   * object it read while another process was writing object files. A failing device throws.
   */
  async findable(ref: MaterialRef): Promise<boolean> {
    try {
      await this.attributes(ref);
      return true;
    } catch (err) {
      if (err instanceof KmsError && err.staleRead) return false;
      throw err;
    }
  }

  /**
   * Every token object with its label and creation id (reconciliation). The listing also
   * fills the handle cache: after a restart, a key's first use would otherwise search the
   * whole token (C_FindObjects reads every object: ~30 ms per first use with 1,000 keys).
   */
  async listObjects(): Promise<Array<Omit<TokenObjectInfo, 'handle'>>> {
    return this.token.run('list token objects', async (session) => {
      const objects = await listTokenObjects(this.token, session);
      this.token.lookup.listed(objects);
      return objects.map(({ handle: _handle, ...info }) => info);
    }, { listing: true });
  }

  /**
   * Destroys token objects reconciliation proved unreferenced: by creation id, by label
   * (objects made before creation ids), and torn objects that carry neither. Returns how
   * many objects were destroyed.
   */
  async destroyObjects(which: { creationIds: readonly string[]; labels: readonly string[]; unmarked: boolean }): Promise<number> {
    return this.token.run('destroy unreferenced objects', async (session) => {
      let count = 0;
      for (const creationId of which.creationIds) count += await destroyCreation(this.token, session, creationId);
      const labels = new Set(which.labels);
      for (const info of await listTokenObjects(this.token, session)) {
        if (info.creationId !== undefined) continue;
        if ((which.unmarked && info.unmarked) || labels.has(info.label)) {
          this.token.pkcs11.C_DestroyObject(session, info.handle);
          count++;
        }
      }
      return count;
    }, { listing: true });
  }

  async attributes(ref: MaterialRef): Promise<MaterialAttributes> {
    return this.token.run('read key attributes', (session) => {
      // The secret key, or the private half of a key pair.
      // The token object itself, never its session copy.
      const handle = lookup(this.token, session, ref, pkcs11js.CKO_PRIVATE_KEY) ?? lookup(this.token, session, ref, pkcs11js.CKO_SECRET_KEY);
      if (!handle) throw materialNotFound(ref, pkcs11js.CKO_SECRET_KEY);
      const attrs = this.token.pkcs11.C_GetAttributeValue(session, handle, [
        { type: pkcs11js.CKA_TOKEN },
        { type: pkcs11js.CKA_SENSITIVE },
        { type: pkcs11js.CKA_EXTRACTABLE },
        { type: pkcs11js.CKA_ALWAYS_SENSITIVE },
        { type: pkcs11js.CKA_NEVER_EXTRACTABLE },
      ]);
      const flag = (i: number) => Boolean(attrs[i].value && (attrs[i].value as Buffer)[0]);
      return { token: flag(0), sensitive: flag(1), extractable: flag(2), alwaysSensitive: flag(3), neverExtractable: flag(4) };
    });
  }
}

export function requiredObject(token: Token, session: Session, ref: MaterialRef, objectClass: number): Buffer {
  const handle = usable(token, session, ref, objectClass);
  if (!handle) throw materialNotFound(ref, objectClass);
  return handle;
}

/**
 * The token objects of one material other than `tried` (the object or session copy a use
 * just computed with), when its creation id (or, before creation ids, its label) names
 * several: see ObjectLookup.candidates.
 */
export function otherCandidates(token: Token, ref: MaterialRef, objectClass: number, tried: Buffer): Buffer[] {
  const all = ref.creationId ? token.lookup.candidates(ref.creationId, objectClass) : token.lookup.labelCandidates(materialLabel(ref), objectClass);
  return (all ?? []).filter((handle) => !handle.equals(tried));
}

/** The token object of one material. */
function lookup(token: Token, session: Session, ref: MaterialRef, objectClass: number): Buffer | undefined {
  return ref.creationId ? token.lookup.findCreation(session, ref.creationId, objectClass) : token.lookup.findObject(session, materialLabel(ref), objectClass);
}

/** The object to compute with: the token object, or its session copy (profile sessionCopies). */
function usable(token: Token, session: Session, ref: MaterialRef, objectClass: number): Buffer | undefined {
  return ref.creationId ? token.lookup.findForUse(session, ref.creationId, objectClass) : token.lookup.findObject(session, materialLabel(ref), objectClass);
}

/**
 * The material a request read from the store is not in the token. Usually a concurrent
 * request destroyed it after changing the store (DeleteImportedKeyMaterial, an expiry, a
 * deletion): re-reading the key then gives the right answer, so the error says the request
 * may be retried from the start.
 */
function materialNotFound(ref: MaterialRef, objectClass: number): KmsError {
  return new KmsError('KeyUnavailableException', 'The key material is not available in the key store.', {
    internalDetail: `no token object of class ${objectClass} for ${materialLabel(ref)}${ref.creationId ? ` (creation ${ref.creationId})` : ''}`,
    staleRead: true,
  });
}
