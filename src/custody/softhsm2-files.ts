import * as fs from 'node:fs';
import * as path from 'node:path';
import type { Logger } from 'pino';

/**
 * SoftHSM2's file object store keeps each object in `<uuid>.object` (beside `<uuid>.lock`),
 * created empty and then rewritten in place: first with the template's attributes, then with
 * the key value the generation made. A process killed in between leaves an empty, cut-off or
 * valueless file that SoftHSM2 will not load: no PKCS#11 call can see or destroy it, and it
 * would stay in the token directory for ever.
 *
 * Before the module is loaded, and only while no other process can use the token (the caller
 * holds the data directory's lock, so no creation is running), this removes such files from
 * an embedded token directory, and sets aside the ones that hold a whole key (objectFileState). With processes sharing the token (a shared store), reconciliation
 * removes those last written longer ago than a creation's lease (`olderThanMs`) instead. `token.object` (the token itself) is never touched, nor any
 * file this cannot read with certainty. Unfinished object files of private objects cannot be
 * told apart by name (SoftHSM2 encrypts their labels and ids), so the test is structural.
 *
 * File layout (SoftHSM2 2.6 ObjectFile): an 8-byte generation, then attribute records in
 * ascending type order: 8-byte type, 8-byte kind, value: kind 1 boolean (1 byte), kind 2
 * unsigned long (8 bytes), kind 3 byte string (8-byte length, bytes). The map and set
 * attributes (kinds 4 and 5, types from 0x40000000) come last and are not parsed.
 */
export function removeUnfinishedObjectFiles(tokensDir: string, log: Logger, options: { olderThanMs?: number; finished?: Map<string, number> } = {}): number {
  const writtenBefore = options.olderThanMs === undefined ? Infinity : Date.now() - options.olderThanMs;
  const present = new Set<string>();
  const setAside: string[] = [];
  let removed = 0;
  if (!fs.existsSync(tokensDir)) return 0;
  for (const token of fs.readdirSync(tokensDir, { withFileTypes: true })) {
    if (!token.isDirectory()) continue;
    const dir = path.join(tokensDir, token.name);
    for (const name of fs.readdirSync(dir)) {
      if (!name.endsWith('.object') || name === 'token.object') continue;
      const file = path.join(dir, name);
      present.add(file);
      let bytes: Buffer;
      let writtenAt: number;
      try {
        writtenAt = fs.statSync(file).mtimeMs;
        // A file written lately may be a creation another process is running now; one found
        // finished before and not written since needs no second reading.
        if (writtenAt >= writtenBefore || options.finished?.get(file) === writtenAt) continue;
        bytes = fs.readFileSync(file);
      } catch {
        continue; // Destroyed meanwhile.
      }
      const state = objectFileState(bytes);
      if (state === 'finished') {
        options.finished?.set(file, writtenAt);
        continue;
      }
      if (state === 'unmarked key') {
        const aside = path.join(path.dirname(tokensDir), SET_ASIDE_DIR, token.name);
        fs.mkdirSync(aside, { recursive: true, mode: 0o700 });
        fs.renameSync(file, path.join(aside, name));
        setAside.push(path.join(aside, name));
      } else {
        fs.rmSync(file, { force: true });
        removed++;
      }
      fs.rmSync(file.replace(/\.object$/, '.lock'), { force: true });
    }
  }
  for (const file of options.finished?.keys() ?? []) if (!present.has(file)) options.finished!.delete(file);
  if (removed > 0) log.warn({ removed, tokensDir }, 'removed token object files a crash left unfinished');
  if (setAside.length > 0) {
    log.warn({ files: setAside }, 'set aside token object files that hold a key value but are not marked as token objects (SoftHSM2 does not load them; see docs/key-custody.md)');
  }
  return removed + setAside.length;
}

/** Beside the token directory: object files set aside rather than removed (objectFileState). */
export const SET_ASIDE_DIR = 'token-files-set-aside';

const CKA_CLASS = 0n;
const CKA_TOKEN = 1n;
/** The attribute(s) one of which a finished key object of each class holds (its key value). */
const VALUE_OF_CLASS: Record<string, bigint[]> = {
  '2': [0x120n, 0x181n], // public key: CKA_MODULUS, CKA_EC_POINT
  '3': [0x11n, 0x123n], // private key: CKA_VALUE (EC, EdDSA), CKA_PRIVATE_EXPONENT (RSA)
  '4': [0x11n], // secret key: CKA_VALUE
};

/** Whether SoftHSM2 would not load the object file as a token object (objectFileState is not 'finished'). */
export function isUnfinished(bytes: Buffer): boolean {
  return objectFileState(bytes) !== 'finished';
}

/**
 * 'finished': a whole object. 'unfinished': empty, cut off, defaults only or without its key
 * value. 'unmarked key': a key value in a file not marked as a token object (CKA_TOKEN false):
 * an import's C_CopyObject cut short, or a key p11kms acknowledged that SoftHSM2 2.6.1 stored
 * so when a lookup raced its creation (before the profile quirk
 * lookupsCorruptObjectsBeingWritten). SoftHSM2 loads neither, but the second can be brought
 * back by hand (docs/key-custody.md), so such a file is set aside, never removed.
 */
export function objectFileState(bytes: Buffer): 'finished' | 'unfinished' | 'unmarked key' {
  const { records, cut } = attributeRecords(bytes);
  if (cut) return 'unfinished';
  // An empty byte string is the default SoftHSM2 writes before the template and the key arrive.
  const types = new Set(records.filter((r) => r.kind !== 3n || r.length > 0).map((r) => r.type));
  const classRecord = records.find((r) => r.type === CKA_CLASS && r.kind === 2n);
  if (!classRecord) return 'unfinished';
  const value = VALUE_OF_CLASS[bytes.readBigUInt64BE(classRecord.at).toString()];
  const holdsValue = value !== undefined && value.some((t) => types.has(t));
  const tokenRecord = records.find((r) => r.type === CKA_TOKEN && r.kind === 1n);
  // Every object in a token directory ends with CKA_TOKEN true. It reads false until the
  // template is applied: after SoftHSM2 wrote the defaults of a new object, or copied a
  // session object's attributes for C_CopyObject. PKCS#11 lookups for token objects never
  // see such a file, so nothing but this would ever remove it.
  if (tokenRecord && bytes[tokenRecord.at] === 0) return holdsValue ? 'unmarked key' : 'unfinished';
  return value === undefined || holdsValue ? 'finished' : 'unfinished';
}

/**
 * The object file with CKA_TOKEN set to `onToken` (its one byte rewritten in place), or
 * undefined when the file has no CKA_TOKEN record to set. restoreSetAside uses it to bring
 * back an unmarked key; tests use it to make one.
 */
export function withTokenFlag(bytes: Buffer, onToken: boolean): Buffer | undefined {
  const tokenRecord = attributeRecords(bytes).records.find((r) => r.type === CKA_TOKEN && r.kind === 1n);
  if (!tokenRecord) return undefined;
  const out = Buffer.from(bytes);
  out[tokenRecord.at] = onToken ? 0xff : 0;
  return out;
}

/**
 * The attribute records of an object file, each with where its value starts and its length
 * (see the layout above). `cut` when the file ends inside a record. The first map or set
 * record (kinds 4 and 5) ends the walk: they come last and are not parsed.
 */
function attributeRecords(bytes: Buffer): { records: Array<{ type: bigint; kind: bigint; at: number; length: number }>; cut: boolean } {
  const records: Array<{ type: bigint; kind: bigint; at: number; length: number }> = [];
  if (bytes.length < 8) return { records, cut: true };
  let offset = 8;
  while (offset < bytes.length) {
    if (offset + 16 > bytes.length) return { records, cut: true };
    const type = bytes.readBigUInt64BE(offset);
    const kind = bytes.readBigUInt64BE(offset + 8);
    offset += 16;
    let length: number;
    if (kind === 1n) length = 1;
    else if (kind === 2n) length = 8;
    else if (kind === 3n) {
      if (offset + 8 > bytes.length) return { records, cut: true };
      length = Number(bytes.readBigUInt64BE(offset));
      offset += 8;
    } else {
      records.push({ type, kind, at: offset, length: 0 });
      break;
    }
    if (offset + length > bytes.length) return { records, cut: true };
    records.push({ type, kind, at: offset, length });
    offset += length;
  }
  return { records, cut: false };
}

/**
 * `p11kms token restore-set-aside`, with the service stopped: every unmarked key set aside
 * (objectFileState) goes back into its token directory marked as a token object. A key the
 * store still refers to works again; any other comes back as material no key refers to, which
 * start-up keeps and counts (unknownTokenObjects). Returns the files restored.
 */
export function restoreSetAside(dataDir: string): string[] {
  const asideDir = path.join(dataDir, SET_ASIDE_DIR);
  const restored: string[] = [];
  if (!fs.existsSync(asideDir)) return restored;
  for (const token of fs.readdirSync(asideDir, { withFileTypes: true })) {
    if (!token.isDirectory()) continue;
    const tokenDir = path.join(dataDir, 'tokens', token.name);
    if (!fs.existsSync(path.join(tokenDir, 'token.object'))) throw new Error(`no token directory ${tokenDir} for the files set aside from it`);
    for (const name of fs.readdirSync(path.join(asideDir, token.name))) {
      const file = path.join(asideDir, token.name, name);
      const bytes = fs.readFileSync(file);
      const marked = objectFileState(bytes) === 'unmarked key' ? withTokenFlag(bytes, true) : undefined;
      if (!marked) continue;
      // Written beside the token's files and renamed in: SoftHSM2 never sees a half-written object.
      const staged = path.join(tokenDir, `${name}.restoring`);
      fs.writeFileSync(staged, marked, { mode: 0o600 });
      fs.renameSync(staged, path.join(tokenDir, name));
      fs.rmSync(file);
      restored.push(path.join(tokenDir, name));
    }
  }
  return restored;
}

