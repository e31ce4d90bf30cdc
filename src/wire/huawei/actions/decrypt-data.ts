import { fromBase64 } from '../envelope';
import { invalid } from '../errors';
import { type Action, call, encryptionContext, keyIdOf, keyRef, symmetricOnly, text, zero } from './shared';

/**
 * plain_text is the UTF-8 text encrypt-data took. Fatal: a plaintext that is not UTF-8 (a
 * data key's ciphertext re-encoded to Base64, or an AWS-made ciphertext of binary data in the
 * envelope) is refused rather than answered with U+FFFD in place of its bytes. ignoreBOM: a
 * leading U+FEFF is part of the text and is kept.
 */
const UTF8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

function plainText(plaintext: Uint8Array): string {
  try {
    return UTF8.decode(plaintext);
  } catch {
    throw invalid('KMS.2201', 'Its plaintext is not UTF-8 text, so it was not made by encrypt-data (data keys open with decrypt-datakey).');
  }
}

export const decryptData: Action = async (body, ctx, services) => {
  const cipher = text(body, 'cipher_text', true);
  symmetricOnly(body);
  const context = encryptionContext(body);
  const named = body.key_id === undefined ? undefined : keyRef(body);
  const blob = fromBase64(cipher);
  const out = await call('Decrypt', { CiphertextBlob: blob, KeyId: named, EncryptionContext: context }, ctx, services);
  try {
    return { key_id: keyIdOf(out.KeyId), plain_text: plainText(out.Plaintext!) };
  } finally {
    zero(out.Plaintext);
  }
};
