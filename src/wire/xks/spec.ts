import { createHash } from 'node:crypto';

/**
 * Constructions of the XKS Proxy API specification v1 (aws/aws-kms-xksproxy-api-spec,
 * CC BY-SA 4.0), shared by the proxy (src/wire/xks) and the client (src/keystores).
 */

/** The AAD the HSM sees: u16be(len AAD) ‖ AAD ‖ u8(len ctMeta) ‖ ctMeta, so ctMeta is covered by the tag. */
export function hsmAad(aad: Buffer | undefined, ciphertextMetadata: Buffer | undefined): Buffer {
  const a = aad ?? Buffer.alloc(0);
  const m = ciphertextMetadata ?? Buffer.alloc(0);
  const lengths = Buffer.alloc(2);
  lengths.writeUInt16BE(a.length);
  return Buffer.concat([lengths, a, Buffer.from([m.length]), m]);
}

/** ciphertextDataIntegrityValue: SHA-256 of AAD ‖ ctMeta ‖ IV ‖ ciphertext ‖ tag, absent fields empty. */
export function integrityValue(parts: { aad?: Buffer; ciphertextMetadata?: Buffer; iv: Buffer; ciphertext: Buffer; tag: Buffer }): string {
  const hash = createHash('sha256');
  for (const p of [parts.aad, parts.ciphertextMetadata, parts.iv, parts.ciphertext, parts.tag]) if (p) hash.update(p);
  return hash.digest('base64');
}

export const XKS_SERVICE = 'kms-xks-proxy';
export const XKS_API_PATH = '/kms/xks/v1';
