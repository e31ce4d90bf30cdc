import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import { KmsError } from '../../errors';
import type { ImportParametersRecord, KeyRecord } from '../../store/records';

/**
 * The ImportToken GetParametersForImport hands out: `p11kmsIT` ‖ 0x01 ‖ key id (16 bytes) ‖
 * wrapping id (16 bytes) ‖ 32 random bytes. Only its SHA-256 is stored, with the wrapping
 * key, algorithm and expiry it is bound to; a token is accepted only for that key, with
 * that wrapping key and algorithm, until it expires.
 */
const MAGIC = Buffer.from('p11kmsIT', 'ascii');
const LENGTH = MAGIC.length + 1 + 16 + 16 + 32;
export const IMPORT_PARAMETERS_VALIDITY_MS = 24 * 60 * 60 * 1000;

export function newImportToken(keyId: string): { token: Buffer; wrappingId: string; tokenHash: string } {
  const wrappingIdBytes = randomBytes(16);
  const token = Buffer.concat([MAGIC, Buffer.from([1]), Buffer.from(keyId.replaceAll('-', ''), 'hex'), wrappingIdBytes, randomBytes(32)]);
  return { token, wrappingId: wrappingIdBytes.toString('hex'), tokenHash: hashOf(token) };
}

function hashOf(token: Buffer): string {
  return createHash('sha256').update(token).digest('hex');
}

const invalid = () => new KmsError('InvalidImportTokenException', 'Import token is invalid or corrupted. Use GetParametersForImport to get a new import token and public key.');

/** The import parameters an ImportToken names, or AWS's import token exceptions. */
export function importParametersFor(key: KeyRecord, token: Buffer, now: number): ImportParametersRecord {
  if (token.length !== LENGTH || !token.subarray(0, MAGIC.length).equals(MAGIC) || token[MAGIC.length] !== 1) throw invalid();
  const keyId = token.subarray(MAGIC.length + 1, MAGIC.length + 17).toString('hex');
  if (keyId !== key.keyId.replaceAll('-', '')) throw invalid();
  const wrappingId = token.subarray(MAGIC.length + 17, MAGIC.length + 33).toString('hex');
  const hash = Buffer.from(hashOf(token), 'hex');
  const params = key.importParameters?.find((p) => p.wrappingId === wrappingId && timingSafeEqual(Buffer.from(p.tokenHash, 'hex'), hash));
  if (!params) {
    // Expired parameters are removed by the sweeper; until then they are recognised as expired.
    throw invalid();
  }
  if (params.validTo <= now) {
    throw new KmsError(
      'ExpiredImportTokenException',
      'Import token expired. Use GetParametersForImport to get a new import token and public key, use the new public key to encrypt the key material, and then try the request again.',
    );
  }
  return params;
}
