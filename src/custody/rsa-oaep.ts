import { createHash, timingSafeEqual } from 'node:crypto';

export type OaepHash = 'sha1' | 'sha256';

/**
 * EME-OAEP decoding (RFC 8017 §7.1.2, MGF1 with the same hash, empty label) of the output
 * of a raw RSA decryption that happened inside the token. Used where the token cannot do
 * OAEP with this hash itself (SoftHSM2 2.6 offers only SHA-1).
 *
 * Constant time in the secret data: every byte of the block is processed whatever its
 * content, and every failure returns the same `undefined`, so the result leaks nothing
 * beyond success or failure.
 */
export function oaepDecode(em: Buffer, hash: OaepHash): Buffer | undefined {
  const hLen = hash === 'sha1' ? 20 : 32;
  const k = em.length;
  if (k < 2 * hLen + 2) return undefined;
  const lHash = createHash(hash).digest();
  const maskedSeed = em.subarray(1, 1 + hLen);
  const maskedDb = em.subarray(1 + hLen);
  const seed = xor(maskedSeed, mgf1(maskedDb, hLen, hash));
  const db = xor(maskedDb, mgf1(seed, k - hLen - 1, hash));
  seed.fill(0);

  let good = em[0] === 0 ? 1 : 0;
  good &= timingSafeEqual(db.subarray(0, hLen), lHash) ? 1 : 0;
  // Find the 0x01 separator after the zero padding without branching on secret bytes.
  let lookingForOne = 1;
  let messageStart = 0;
  let invalidPadding = 0;
  for (let i = hLen; i < db.length; i++) {
    const isOne = ct_eq(db[i], 1);
    const isZero = ct_eq(db[i], 0);
    messageStart = ct_select(lookingForOne & isOne, i + 1, messageStart);
    invalidPadding |= lookingForOne & (1 - isOne) & (1 - isZero);
    lookingForOne &= 1 - isOne;
  }
  good &= (1 - lookingForOne) & (1 - invalidPadding);
  const message = Buffer.from(db.subarray(messageStart));
  db.fill(0);
  if (good !== 1) {
    message.fill(0);
    return undefined;
  }
  return message;
}

function mgf1(seed: Buffer, length: number, hash: OaepHash): Buffer {
  const out: Buffer[] = [];
  let produced = 0;
  for (let counter = 0; produced < length; counter++) {
    const c = Buffer.alloc(4);
    c.writeUInt32BE(counter);
    const block = createHash(hash).update(seed).update(c).digest();
    out.push(block);
    produced += block.length;
  }
  return Buffer.concat(out).subarray(0, length);
}

function xor(a: Buffer, b: Buffer): Buffer {
  const out = Buffer.alloc(a.length);
  for (let i = 0; i < a.length; i++) out[i] = a[i] ^ b[i];
  return out;
}

/** 1 when a === b (bytes), else 0, without a data-dependent branch. */
function ct_eq(a: number, b: number): number {
  return ((((a ^ b) - 1) >>> 31) & 1);
}

function ct_select(condition: number, a: number, b: number): number {
  const mask = -condition;
  return (a & mask) | (b & ~mask);
}
