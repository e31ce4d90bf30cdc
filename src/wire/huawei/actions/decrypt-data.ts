import { bareFromBase64, fromBase64 } from '../envelope';
import { invalid } from '../errors';
import { type Action, call, contextFor, encryptionAlgorithm, keyIdOf, keyRef, text, zero } from './shared';

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
  const algorithm = encryptionAlgorithm(body);
  const context = contextFor(algorithm, body);
  const named = body.key_id === undefined ? undefined : keyRef(body);
  let out;
  if (algorithm === 'SYMMETRIC_DEFAULT') {
    out = await call('Decrypt', { CiphertextBlob: fromBase64(cipher), KeyId: named, EncryptionContext: context }, ctx, services);
  } else {
    // An RSA ciphertext does not say which key made it (Huawei Cloud: key_id is required for asymmetric keys).
    if (named === undefined) throw invalid('KMS.0204', `key_id is required with encryption_algorithm ${algorithm}.`);
    out = await call('Decrypt', { CiphertextBlob: bareFromBase64(cipher), KeyId: named, EncryptionAlgorithm: algorithm }, ctx, services);
  }
  try {
    return { key_id: keyIdOf(out.KeyId), plain_text: plainText(out.Plaintext!) };
  } finally {
    zero(out.Plaintext);
  }
};
