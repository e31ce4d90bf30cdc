import { createPublicKey, type JsonWebKey } from 'node:crypto';
import type { KeySpec } from '../model/generated/types';
import { derTotalLength } from './der';
import { EC_FIELD_BYTES, JWK_CURVE } from './key-templates';
import { unwrapOctetString } from './signing';

/** Public key attributes as read from the token. */
export type PublicKeyMaterial =
  | { family: 'rsa'; modulus: Buffer; exponent: Buffer }
  | { family: 'ec' | 'edwards'; point: Buffer };

const ED25519_POINT_BYTES = 32;

/**
 * CKA_EC_POINT is a DER OCTET STRING on the token, but callers also pass the bare point they
 * computed. A bare point can itself parse as an OCTET STRING (an uncompressed point starts
 * with 0x04, and one x in 256 starts with the byte equal to the remaining length), so the
 * curve's bare length decides, never the bytes.
 */
export function barePoint(point: Buffer, bareLength: number): Buffer {
  return point.length === bareLength ? point : unwrapOctetString(point);
}

/** Builds the DER SubjectPublicKeyInfo AWS returns from the token's public key attributes. */
export function spkiOf(spec: KeySpec, material: PublicKeyMaterial): Buffer {
  let jwk: JsonWebKey;
  if (material.family === 'rsa') {
    jwk = { kty: 'RSA', n: material.modulus.toString('base64url'), e: material.exponent.toString('base64url') };
  } else {
    const point = barePoint(material.point, material.family === 'edwards' ? ED25519_POINT_BYTES : 1 + 2 * EC_FIELD_BYTES[spec]);
    if (material.family === 'edwards') {
      jwk = { kty: 'OKP', crv: 'Ed25519', x: point.toString('base64url') };
    } else {
      const size = (point.length - 1) / 2;
      jwk = {
        kty: 'EC',
        crv: JWK_CURVE[spec],
        x: point.subarray(1, 1 + size).toString('base64url'),
        y: point.subarray(1 + size).toString('base64url'),
      };
    }
  }
  return createPublicKey({ key: jwk, format: 'jwk' }).export({ type: 'spki', format: 'der' });
}

/**
 * The uncompressed point of a peer's public key for ECDH: a DER SubjectPublicKeyInfo, alone
 * (nothing after it: DER admits no trailing bytes), on `spec`'s curve. Undefined otherwise.
 */
export function peerPointOf(spki: Buffer, spec: KeySpec): Buffer | undefined {
  if (derTotalLength(spki) !== spki.length) return undefined;
  try {
    const jwk = createPublicKey({ key: spki, format: 'der', type: 'spki' }).export({ format: 'jwk' });
    if (jwk.kty !== 'EC' || jwk.crv !== JWK_CURVE[spec] || !jwk.x || !jwk.y) return undefined;
    return Buffer.concat([Buffer.from([4]), Buffer.from(jwk.x, 'base64url'), Buffer.from(jwk.y, 'base64url')]);
  } catch {
    return undefined;
  }
}
