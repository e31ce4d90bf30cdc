import { bareToBase64, toBase64 } from '../envelope';
import { invalid } from '../errors';
import { type Action, call, contextFor, encryptionAlgorithm, keyIdOf, keyRef, text, zero } from './shared';

export const encryptData: Action = async (body, ctx, services) => {
  const keyId = keyRef(body);
  const algorithm = encryptionAlgorithm(body);
  const context = contextFor(algorithm, body);
  const plain = text(body, 'plain_text', true);
  // Text with a lone surrogate has no UTF-8 form: encoding it would store U+FFFD instead, and
  // decrypt-data would answer something other than what was sent.
  if (!plain.isWellFormed()) throw invalid('KMS.2101', 'plain_text must be well-formed Unicode text.');
  // plain_text: ^.{1,4096}$, 1 to 4096 bytes as UTF-8 (kms_02_0033); RSAES_OAEP takes less
  // (190 bytes with RSA_2048 and SHA-256), which the shared operation checks.
  const bytes = Buffer.from(plain, 'utf8');
  if (bytes.length < 1 || bytes.length > 4096) throw invalid('KMS.2101');
  try {
    if (algorithm === 'SYMMETRIC_DEFAULT') {
      const out = await call('Encrypt', { KeyId: keyId, Plaintext: bytes, EncryptionContext: context }, ctx, services);
      return { key_id: keyIdOf(out.KeyId), cipher_text: toBase64(out.CiphertextBlob!) };
    }
    const out = await call('Encrypt', { KeyId: keyId, Plaintext: bytes, EncryptionAlgorithm: algorithm }, ctx, services);
    return { key_id: keyIdOf(out.KeyId), cipher_text: bareToBase64(out.CiphertextBlob!) };
  } finally {
    zero(bytes);
  }
};
