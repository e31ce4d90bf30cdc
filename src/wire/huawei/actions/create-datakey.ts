import { toHex } from '../envelope';
import { invalid } from '../errors';
import { type Action, type Body, call, encryptionContext, hex, keyIdOf, keyRef, text, whole, zero } from './shared';

/** datakey_length (bits, 8–8192 in multiples of 8) or key_spec AES_256 / AES_128; 256 bits by default. */
function dataKeyBytes(body: Body): number {
  const bits = whole(body, 'datakey_length', 'KMS.1901', false, [8, 8192]);
  if (bits !== undefined && bits % 8 !== 0) throw invalid('KMS.1903');
  if (bits !== undefined) return bits / 8;
  const spec = text(body, 'key_spec');
  if (spec === undefined || spec === 'AES_256') return 32;
  if (spec === 'AES_128') return 16;
  throw invalid('KMS.0308', 'key_spec must be AES_256 or AES_128.');
}

export const createDatakey: Action = async (body, ctx, services) => {
  const keyId = keyRef(body);
  const context = encryptionContext(body);
  const bytes = dataKeyBytes(body);
  const out = await call('GenerateDataKey', { KeyId: keyId, NumberOfBytes: bytes, EncryptionContext: context }, ctx, services);
  try {
    return { key_id: keyIdOf(out.KeyId), plain_text: hex(out.Plaintext!), cipher_text: toHex(out.CiphertextBlob!) };
  } finally {
    zero(out.Plaintext);
  }
};

export const createDatakeyWithoutPlaintext: Action = async (body, ctx, services) => {
  const keyId = keyRef(body);
  const context = encryptionContext(body);
  const bytes = dataKeyBytes(body);
  const out = await call('GenerateDataKeyWithoutPlaintext', { KeyId: keyId, NumberOfBytes: bytes, EncryptionContext: context }, ctx, services);
  return { key_id: keyIdOf(out.KeyId), cipher_text: toHex(out.CiphertextBlob!) };
};
