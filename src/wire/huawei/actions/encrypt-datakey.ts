import { createHash } from 'node:crypto';
import { toHex } from '../envelope';
import { invalid } from '../errors';
import { type Action, call, encryptionContext, keyIdOf, keyRef, text, whole, zero } from './shared';

export const encryptDatakey: Action = async (body, ctx, services) => {
  const keyId = keyRef(body);
  const context = encryptionContext(body);
  // plain_text: hex of the DEK followed by hex of its SHA-256 digest; datakey_plain_length: the
  // DEK's bytes (kms_02_0022; 64 there, 1–1024 as AWS's data keys here).
  const length = whole(body, 'datakey_plain_length', 'KMS.2102', true, [1, 1024])!;
  const plain = text(body, 'plain_text', true);
  if (!/^[0-9a-fA-F]*$/.test(plain) || plain.length % 2 !== 0 || plain.length <= 64) throw invalid('KMS.2101');
  if (plain.length !== 2 * (length + 32)) throw invalid('KMS.2104');
  const all = Buffer.from(plain, 'hex');
  const dek = all.subarray(0, length);
  try {
    const digest = createHash('sha256').update(dek).digest();
    if (!digest.equals(all.subarray(length))) throw invalid('KMS.2103');
    const out = await call('Encrypt', { KeyId: keyId, Plaintext: dek, EncryptionContext: context }, ctx, services);
    return { key_id: keyIdOf(out.KeyId), cipher_text: toHex(out.CiphertextBlob!), datakey_length: String(length) };
  } finally {
    zero(all);
  }
};
