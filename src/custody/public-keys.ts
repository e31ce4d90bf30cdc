import { createPublicKey, type JsonWebKey } from 'node:crypto';
import type { KeySpec } from '../model/generated/types';
import { JWK_CURVE } from './key-templates';
import { unwrapOctetString } from './signing';

/** Public key attributes as read from the token. */
export type PublicKeyMaterial =
  | { family: 'rsa'; modulus: Buffer; exponent: Buffer }
  | { family: 'ec' | 'edwards'; point: Buffer };

/** Builds the DER SubjectPublicKeyInfo AWS returns from the token's public key attributes. */
export function spkiOf(spec: KeySpec, material: PublicKeyMaterial): Buffer {
  let jwk: JsonWebKey;
  if (material.family === 'rsa') {
    jwk = { kty: 'RSA', n: material.modulus.toString('base64url'), e: material.exponent.toString('base64url') };
  } else {
    const point = unwrapOctetString(material.point);
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
