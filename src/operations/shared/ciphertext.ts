import { KmsError } from '../../errors';

/**
 * The symmetric ciphertext blob (format documented in docs/ciphertext-format.md).
 *
 *   0      1  format version: 1 = single-Region key id, 2 = multi-Region key id
 *   1      1  payload kind: 0 = caller's plaintext, 1 = secret wrapped inside the token
 *   2     16  key id (UUID bytes, or the 32 hex digits after `mrk-`)
 *   18     4  key material version (uint32, big-endian)
 *   22     2  secret length (uint16; kind 1 only, else 0)
 *   24    12  AES-GCM IV (random per call, from the token)
 *   36     n  AES-GCM ciphertext ‖ 16-byte tag
 *
 * The GCM AAD is DOMAIN ‖ header (bytes 0..24) ‖ canonical encryption context, so the key,
 * the material version, the payload kind and the context are all authenticated: changing
 * any of them fails the tag check inside the token.
 */
export const CIPHERTEXT_FORMAT_VERSION = 1;
/** The same layout for a multi-Region key: its ciphertexts decrypt in every region of the key. */
export const MULTI_REGION_FORMAT_VERSION = 2;
const MULTI_REGION_PREFIX = 'mrk-';
export const HEADER_BYTES = 24;
export const IV_BYTES = 12;
const TAG_BYTES = 16;
const DOMAIN = Buffer.from('p11kms/ciphertext/v1\0', 'utf8');

export enum PayloadKind {
  Plaintext = 0,
  WrappedSecret = 1,
}

export interface CiphertextHeader {
  kind: PayloadKind;
  keyId: string;
  materialVersion: number;
  secretLength: number;
}

export interface ParsedCiphertext extends CiphertextHeader {
  header: Buffer;
  iv: Buffer;
  sealed: Buffer;
  /** Keys of external key stores: the proxy's outer layer around a version-1 blob. */
  external?: ExternalLayer;
}

/**
 * Format version 3, for keys of an external key store (AWS's double encryption): the
 * version-1 blob made with the key's material in this token is encrypted again by the
 * external key at the XKS proxy, with the version-3 header as AAD:
 *
 *   0     24  header (as version 1, byte 0 = 3)
 *   24     1  IV length n (12 or 16)       then n bytes of IV
 *   …     16  authentication tag
 *   …      1  ciphertext metadata length m  then m bytes (≤ 20) of the proxy's metadata
 *   …      *  the proxy's ciphertext of the version-1 blob
 */
export const EXTERNAL_FORMAT_VERSION = 3;

export interface ExternalLayer {
  iv: Buffer;
  tag: Buffer;
  ciphertextMetadata: Buffer;
  ciphertext: Buffer;
}

export function externalHeader(header: Buffer): Buffer {
  const outer = Buffer.from(header);
  outer[0] = EXTERNAL_FORMAT_VERSION;
  return outer;
}

export function assembleExternal(header: Buffer, layer: ExternalLayer): Buffer {
  return Buffer.concat([header, Buffer.from([layer.iv.length]), layer.iv, layer.tag, Buffer.from([layer.ciphertextMetadata.length]), layer.ciphertextMetadata, layer.ciphertext]);
}

function parseExternalLayer(blob: Buffer): ExternalLayer {
  let at = HEADER_BYTES;
  const take = (n: number) => {
    if (at + n > blob.length) throw invalidCiphertext();
    const part = blob.subarray(at, at + n);
    at += n;
    return part;
  };
  const iv = take(take(1)[0]);
  const tag = take(TAG_BYTES);
  const ciphertextMetadata = take(take(1)[0]);
  if ((iv.length !== 12 && iv.length !== 16) || ciphertextMetadata.length > 20) throw invalidCiphertext();
  return { iv, tag, ciphertextMetadata, ciphertext: blob.subarray(at) };
}

export function encodeHeader(h: CiphertextHeader): Buffer {
  const header = Buffer.alloc(HEADER_BYTES);
  const multiRegion = h.keyId.startsWith(MULTI_REGION_PREFIX);
  header[0] = multiRegion ? MULTI_REGION_FORMAT_VERSION : CIPHERTEXT_FORMAT_VERSION;
  header[1] = h.kind;
  Buffer.from((multiRegion ? h.keyId.slice(MULTI_REGION_PREFIX.length) : h.keyId).replaceAll('-', ''), 'hex').copy(header, 2);
  header.writeUInt32BE(h.materialVersion, 18);
  header.writeUInt16BE(h.secretLength, 22);
  return header;
}

export function assemble(header: Buffer, iv: Buffer, sealed: Buffer): Buffer {
  return Buffer.concat([header, iv, sealed]);
}

/** Parses a blob; anything that is not one of ours is InvalidCiphertextException, as on AWS. */
export function parseCiphertext(blob: Buffer): ParsedCiphertext {
  if (blob.length < HEADER_BYTES + IV_BYTES + TAG_BYTES || ![CIPHERTEXT_FORMAT_VERSION, MULTI_REGION_FORMAT_VERSION, EXTERNAL_FORMAT_VERSION].includes(blob[0])) {
    throw invalidCiphertext();
  }
  const external = blob[0] === EXTERNAL_FORMAT_VERSION ? parseExternalLayer(blob) : undefined;
  const kind = blob[1];
  if (kind !== PayloadKind.Plaintext && kind !== PayloadKind.WrappedSecret) throw invalidCiphertext();
  const hex = blob.subarray(2, 18).toString('hex');
  const keyId =
    blob[0] === MULTI_REGION_FORMAT_VERSION
      ? `${MULTI_REGION_PREFIX}${hex}`
      : `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
  return {
    kind,
    keyId,
    materialVersion: blob.readUInt32BE(18),
    secretLength: blob.readUInt16BE(22),
    header: blob.subarray(0, HEADER_BYTES),
    iv: external ? Buffer.alloc(0) : blob.subarray(HEADER_BYTES, HEADER_BYTES + IV_BYTES),
    sealed: external ? Buffer.alloc(0) : blob.subarray(HEADER_BYTES + IV_BYTES),
    ...(external ? { external } : {}),
  };
}

/**
 * A canonical, unambiguous encoding of an encryption context: pairs sorted by key, each
 * string length-prefixed. An absent and an empty context are the same context.
 */
export function canonicalContext(context: Record<string, string> | undefined): Buffer {
  const entries = Object.entries(context ?? {}).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  const parts: Buffer[] = [u32(entries.length)];
  for (const [k, v] of entries) {
    const kb = Buffer.from(k, 'utf8');
    const vb = Buffer.from(v, 'utf8');
    parts.push(u32(kb.length), kb, u32(vb.length), vb);
  }
  return Buffer.concat(parts);
}

export function additionalData(header: Buffer, context: Record<string, string> | undefined): Buffer {
  return Buffer.concat([DOMAIN, header, canonicalContext(context)]);
}

function u32(n: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeUInt32BE(n);
  return b;
}

export function invalidCiphertext(): KmsError {
  return new KmsError('InvalidCiphertextException', '');
}
