import { KmsError } from '../../errors';
import { KEY_ID_ACCEPTS_ALIAS } from '../../model/generated/shapes';
import type { OperationName } from '../../model/generated/types';
import type { KeyRecord } from '../../store/records';
import type { RequestContext, Services } from '../context';
import { invalidCiphertext, type ParsedCiphertext, parseCiphertext } from './ciphertext';
import { findKey } from './key-resolution';

/**
 * Finds the key a symmetric ciphertext names. When the caller also names a key (Decrypt's
 * KeyId, ReEncrypt's SourceKeyId) it must be the same key: IncorrectKeyException otherwise.
 */
export async function keyOfCiphertext(
  services: Services,
  ctx: RequestContext,
  blob: Buffer | undefined,
  named: { operation: OperationName; member: string; value: string | undefined },
): Promise<{ key: KeyRecord; parsed: ParsedCiphertext }> {
  if (blob === undefined) {
    throw new KmsError('ValidationException', "1 validation error detected: Value null at 'ciphertextBlob' failed to satisfy constraint: Member must not be null");
  }
  const parsed = parseCiphertext(blob);
  // A ciphertext of a key in another region (or of no key at all) is not one this region can
  // open, unless the key is multi-Region and has a primary or replica here: they share material.
  const key = await services.store.getKey({ keyId: parsed.keyId, region: ctx.scope.region });
  if (!key) throw invalidCiphertext();
  if (named.value !== undefined) {
    const acceptsAlias = KEY_ID_ACCEPTS_ALIAS[`${named.operation}.${named.member}`] ?? false;
    const namedKey = await findKey(services, ctx, named.value, acceptsAlias);
    if (namedKey.keyId !== key.keyId) {
      throw new KmsError('IncorrectKeyException', 'The key ID in the request does not identify a CMK that can perform this operation.');
    }
  }
  return { key, parsed };
}
