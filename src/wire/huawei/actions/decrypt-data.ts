import { fromBase64 } from '../envelope';
import { type Action, call, encryptionContext, keyIdOf, keyRef, symmetricOnly, text, zero } from './shared';

export const decryptData: Action = async (body, ctx, services) => {
  const cipher = text(body, 'cipher_text', true);
  symmetricOnly(body);
  const context = encryptionContext(body);
  const named = body.key_id === undefined ? undefined : keyRef(body);
  const blob = fromBase64(cipher);
  const out = await call('Decrypt', { CiphertextBlob: blob, KeyId: named, EncryptionContext: context }, ctx, services);
  try {
    return { key_id: keyIdOf(out.KeyId), plain_text: Buffer.from(out.Plaintext!).toString('utf8') };
  } finally {
    zero(out.Plaintext);
  }
};
