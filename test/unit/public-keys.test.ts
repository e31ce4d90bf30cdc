import { expect } from 'chai';
import { createECDH, createPublicKey } from 'node:crypto';
import { spkiOf } from '../../src/custody/public-keys';

/** DER OCTET STRING around a point, as CKA_EC_POINT holds it. */
function octetString(point: Buffer): Buffer {
  return Buffer.concat([Buffer.from([0x04, point.length]), point]);
}

/** An uncompressed point whose x starts with `firstByte`, found by trying keys. */
function pointWithFirstXByte(curve: string, firstByte: number): Buffer {
  for (;;) {
    const ecdh = createECDH(curve);
    ecdh.generateKeys();
    const point = ecdh.getPublicKey();
    if (point[1] === firstByte) return point;
  }
}

describe('public keys from token attributes (spkiOf)', () => {
  // 0x04, then a byte equal to the bytes left (0x3f for P-256): a bare point that also reads as an OCTET STRING.
  for (const [spec, curve, jwkCurve, fieldBytes] of [
    ['ECC_NIST_P256', 'prime256v1', 'P-256', 32],
    ['ECC_SECG_P256K1', 'secp256k1', 'secp256k1', 32],
    ['ECC_NIST_P384', 'secp384r1', 'P-384', 48],
  ] as const) {
    it(`${spec}: a bare point whose x starts with its own remaining length is still the point`, () => {
      const point = pointWithFirstXByte(curve, 2 * fieldBytes - 1);
      const jwk = { kty: 'EC', crv: jwkCurve, x: point.subarray(1, 1 + fieldBytes).toString('base64url'), y: point.subarray(1 + fieldBytes).toString('base64url') };
      const expected = createPublicKey({ key: jwk, format: 'jwk' }).export({ type: 'spki', format: 'der' });
      expect(spkiOf(spec, { family: 'ec', point }).equals(expected)).to.equal(true);
      expect(spkiOf(spec, { family: 'ec', point: octetString(point) }).equals(expected)).to.equal(true);
    });
  }
});
