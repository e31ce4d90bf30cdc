import { invalid } from './errors';

/**
 * The Huawei envelope around p11kms's symmetric ciphertext blob (docs/ciphertext-format.md,
 * "Huawei Cloud / Open Telekom Cloud envelope"). The Huawei KMS API reference ("Decrypting
 * Data", kms_02_0034) requires decrypt-data's cipher_text to match ^[0-9a-zA-Z+/=]{188,5648}$;
 * the blob alone is shorter than 188 base64 characters for small plaintexts, so it travels in
 * a frame padded to at least 141 bytes (188 base64 characters):
 *
 *   0   4  magic "p11H"
 *   4   1  envelope version (1)
 *   5   1  reserved (0)
 *   6   2  blob length n (uint16, big-endian)
 *   8   n  the blob, exactly as Encrypt / GenerateDataKey return it
 *   8+n p  zero padding, p = max(0, 141 - 8 - n)
 *
 * The frame adds no secrecy and no integrity of its own: the blob inside authenticates the key,
 * the material version and the encryption context. The frame only marks ciphertexts this
 * dialect issued; anything else is KMS.2201. Data ciphertexts are base64, DEK ciphertexts hex
 * (as Huawei's create-datakey / encrypt-datakey return them).
 *
 * RSA ciphertexts (encryption_algorithm RSAES_OAEP_*) travel bare: the RSAES-OAEP output is
 * already at least 256 bytes (344 Base64 characters), names no key (decrypt-data needs key_id),
 * and a client may make it with the public key from get-publickey.
 */
const MAGIC = Buffer.from('p11H', 'latin1');
const VERSION = 1;
const HEADER = 8;
const MIN_BYTES = 141;

export const CIPHER_TEXT_PATTERN = /^[0-9a-zA-Z+/=]{188,5648}$/;

export function wrap(blob: Uint8Array): Buffer {
  const frame = Buffer.alloc(Math.max(MIN_BYTES, HEADER + blob.length));
  MAGIC.copy(frame, 0);
  frame[4] = VERSION;
  frame.writeUInt16BE(blob.length, 6);
  Buffer.from(blob.buffer, blob.byteOffset, blob.length).copy(frame, HEADER);
  return frame;
}

/** The blob inside a frame; KMS.2201 for anything this dialect did not issue. */
export function unwrap(frame: Buffer): Buffer {
  if (frame.length < MIN_BYTES || !frame.subarray(0, 4).equals(MAGIC) || frame[4] !== VERSION || frame[5] !== 0) {
    throw invalid('KMS.2201');
  }
  const n = frame.readUInt16BE(6);
  const end = HEADER + n;
  if (end > frame.length) throw invalid('KMS.2201');
  if (frame.length !== Math.max(MIN_BYTES, end) || frame.subarray(end).some((b) => b !== 0)) throw invalid('KMS.2201');
  return frame.subarray(HEADER, end);
}

export function toBase64(blob: Uint8Array): string {
  return wrap(blob).toString('base64');
}

/**
 * The bytes of a cipher_text, which must be canonical Base64 within the pattern: what
 * encrypt-data returned, or (RSA) what a standard encoder makes. Node's decoder is lenient
 * (it stops at the first "=" and ignores the unused bits of the last character), so several
 * strings would otherwise name the same ciphertext.
 */
function cipherTextBytes(text: string): Buffer {
  if (!CIPHER_TEXT_PATTERN.test(text) || text.length % 4 !== 0) throw invalid('KMS.2201');
  const bytes = Buffer.from(text, 'base64');
  if (bytes.toString('base64') !== text) throw invalid('KMS.2201');
  return bytes;
}

export function fromBase64(text: string): Buffer {
  return unwrap(cipherTextBytes(text));
}

/** An RSA ciphertext: Base64 within the cipher_text pattern, no frame. */
export function bareToBase64(ciphertext: Uint8Array): string {
  return Buffer.from(ciphertext.buffer, ciphertext.byteOffset, ciphertext.length).toString('base64');
}

export function bareFromBase64(text: string): Buffer {
  return cipherTextBytes(text);
}

export function toHex(blob: Uint8Array): string {
  return wrap(blob).toString('hex').toUpperCase();
}

export function fromHex(text: string): Buffer {
  if (!/^[0-9a-fA-F]+$/.test(text) || text.length % 2 !== 0) throw invalid('KMS.2201');
  return unwrap(Buffer.from(text, 'hex'));
}
