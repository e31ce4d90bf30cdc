import * as pkcs11js from 'pkcs11js';
import type { Logger } from 'pino';
import { ckrName } from './pkcs11-errors';

type Session = Buffer;
type ObjectHandle = Buffer;

/** Copies kept per process; past this the oldest is destroyed (it is made again on its next use). */
const MAX_COPIES = 4096;

/** What a token answers when it will never copy an object (made frozen, or not copyable at all). */
const UNCOPYABLE = new Set(['CKR_ATTRIBUTE_READ_ONLY', 'CKR_ACTION_PROHIBITED', 'CKR_VENDOR_DEFINED', 'CKR_FUNCTION_NOT_SUPPORTED']);

/**
 * Per-process session copies of token keys (profile setting `sessionCopies`, in-process
 * software tokens only): a use of a SoftHSM2 token object opens and locks its files, a use of
 * a session object does not (../shared/softhsm2-notes.md).
 *
 * A copy is made once per creation id with C_CopyObject (CKA_TOKEN false, CKA_MODIFIABLE
 * false: sensitive and never extractable like its source, which the token enforces) and lives
 * in the keep-alive session, so pool sessions come and go without taking copies with them.
 * A creation id names one immutable token object forever, so a copy never goes stale: it is
 * dropped when this process destroys the source (forget), when the keep-alive session is
 * replaced (clear: the token destroyed the copies with it), and when the cache is full. A key
 * made frozen (before the setting, or on a token that refuses) is used from the token object.
 */
export class SessionCopies {
  /** `${objectClass}#${creationId}` → the copy, or the token object itself when it cannot be copied. */
  private readonly copies = new Map<string, { handle: ObjectHandle; copied: boolean }>();

  constructor(
    private readonly pkcs11: pkcs11js.PKCS11,
    private readonly owner: () => Session,
    private readonly log: Logger,
  ) {}

  /** The handle to use for `source` (the token object of `creationId`): its session copy when the token makes one. */
  usable(cacheKey: string, source: ObjectHandle): ObjectHandle {
    const known = this.copies.get(cacheKey);
    if (known) return known.handle;
    let entry: { handle: ObjectHandle; copied: boolean };
    try {
      const handle = this.pkcs11.C_CopyObject(this.owner(), source, [
        { type: pkcs11js.CKA_TOKEN, value: false },
        { type: pkcs11js.CKA_MODIFIABLE, value: false },
      ]);
      entry = { handle, copied: true };
    } catch (err) {
      // A copy only saves time: whatever went wrong, this use goes to the token object, and
      // a failure that may pass (SoftHSM2's transient codes) is tried again on the next use.
      const ckr = ckrName(err);
      if (!UNCOPYABLE.has(ckr ?? '')) {
        this.log.debug({ ckr }, 'session copy not made; using the token object');
        return source;
      }
      entry = { handle: source, copied: false };
    }
    if (this.copies.size >= MAX_COPIES) this.evictOldest();
    this.copies.set(cacheKey, entry);
    return entry.handle;
  }

  /** The source of these copies was destroyed by this process: its copies go too. */
  forget(cacheKeys: readonly string[]): void {
    for (const key of cacheKeys) {
      const entry = this.copies.get(key);
      if (!entry) continue;
      this.copies.delete(key);
      if (entry.copied) this.destroy(entry.handle);
    }
  }

  /** The keep-alive session is gone, and its copies with it. */
  clear(): void {
    this.copies.clear();
  }


  get size(): number {
    return this.copies.size;
  }

  private evictOldest(): void {
    const [key, entry] = this.copies.entries().next().value as [string, { handle: ObjectHandle; copied: boolean }];
    this.copies.delete(key);
    if (entry.copied) this.destroy(entry.handle);
  }

  private destroy(handle: ObjectHandle): void {
    try {
      this.pkcs11.C_DestroyObject(this.owner(), handle);
    } catch (err) {
      // Already gone with its session; nothing is left to free.
      this.log.debug({ ckr: ckrName(err) }, 'session copy already gone');
    }
  }
}
