import { createHash } from 'node:crypto';
import { fromHex } from '../envelope';
import { invalid } from '../errors';
import { type Action, call, encryptionContext, hex, keyRef, text, whole, zero } from './shared';

export const decryptDatakey: Action = async (body, ctx, services) => {
  const keyId = keyRef(body);
  const context = encryptionContext(body);
  const length = whole(body, 'datakey_cipher_length', 'KMS.2202', true, [1, 1024])!;
  const blob = fromHex(text(body, 'cipher_text', true));
  const out = await call('Decrypt', { CiphertextBlob: blob, KeyId: keyId, EncryptionContext: context }, ctx, services);
  const dek = out.Plaintext!;
  try {
    if (dek.length !== length) throw invalid('KMS.2204');
    return {
      data_key: hex(dek),
      datakey_length: String(length),
      datakey_dgst: createHash('sha256').update(dek).digest('hex').toUpperCase(),
    };
  } finally {
    zero(dek);
  }
};
