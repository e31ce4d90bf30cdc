import type { AlgorithmSpec, WrappingKeySpec } from '../../../model/generated/types';
import { invalid } from '../errors';
import { type Action, base64Member, call, keyIdOf, keyRef, text } from './shared';

// ---------------------------------------------------------------------------------------------
// Import (OTC kms_02_0035 get-parameters-for-import, kms_02_0036 import-key-material,
// kms_02_0037 delete-imported-key-material; create-key with origin "external").

const WRAPPING_ALGORITHMS: ReadonlySet<string> = new Set(['RSAES_PKCS1_V1_5', 'RSAES_OAEP_SHA_1', 'RSAES_OAEP_SHA_256', 'RSA_AES_KEY_WRAP_SHA_1', 'RSA_AES_KEY_WRAP_SHA_256']);
const WRAPPING_KEY_SPECS: ReadonlySet<string> = new Set(['RSA_2048', 'RSA_3072', 'RSA_4096']);

export const getParametersForImport: Action = async (body, ctx, services) => {
  const keyId = keyRef(body, { idOnly: true });
  const algorithm = text(body, 'wrapping_algorithm', true);
  if (!WRAPPING_ALGORITHMS.has(algorithm)) throw invalid('KMS.0308', `wrapping_algorithm must be one of ${[...WRAPPING_ALGORITHMS].join(', ')}.`);
  // The reference returns RSA_2048 wrapping keys by default.
  const spec = text(body, 'wrapping_key_spec') ?? 'RSA_2048';
  if (!WRAPPING_KEY_SPECS.has(spec)) throw invalid('KMS.0308', 'wrapping_key_spec must be RSA_2048, RSA_3072 or RSA_4096.');
  const out = await call(
    'GetParametersForImport',
    { KeyId: keyId, WrappingAlgorithm: algorithm as AlgorithmSpec, WrappingKeySpec: spec as WrappingKeySpec },
    ctx,
    services,
  );
  return {
    key_id: keyIdOf(out.KeyId),
    import_token: Buffer.from(out.ImportToken!).toString('base64'),
    // Seconds since the epoch.
    expiration_time: Math.floor(out.ParametersValidTo!.getTime() / 1000),
    public_key: Buffer.from(out.PublicKey!).toString('base64'),
  };
};

export const importKeyMaterial: Action = async (body, ctx, services) => {
  const keyId = keyRef(body, { idOnly: true });
  const token = base64Member(body, 'import_token', 6144);
  // RSA-2048 gives 344 characters; larger wrapping keys and RSA_AES_KEY_WRAP give more.
  const material = base64Member(body, 'encrypted_key_material', 1024);
  const expires = text(body, 'expiration_time');
  let validTo: Date | undefined;
  if (expires !== undefined && expires !== '') {
    if (!/^\d{1,12}$/.test(expires)) throw invalid('KMS.0308', 'expiration_time must be a time in seconds since the epoch.');
    validTo = new Date(Number(expires) * 1000);
    if (validTo.getTime() <= services.clock.now()) throw invalid('KMS.2602');
  }
  await call(
    'ImportKeyMaterial',
    {
      KeyId: keyId,
      ImportToken: token,
      EncryptedKeyMaterial: material,
      ...(validTo ? { ExpirationModel: 'KEY_MATERIAL_EXPIRES' as const, ValidTo: validTo } : { ExpirationModel: 'KEY_MATERIAL_DOES_NOT_EXPIRE' as const }),
    },
    ctx,
    services,
  );
  return {};
};

export const deleteImportedKeyMaterial: Action = async (body, ctx, services) => {
  const keyId = keyRef(body, { idOnly: true });
  // kms_02_0037 deletes the material of an Enabled or Disabled key only (KMS.2701); AWS's
  // DeleteImportedKeyMaterial also answers for keys pending import (no effect) or deletion.
  const { KeyMetadata: m } = await call('DescribeKey', { KeyId: keyId }, ctx, services);
  if (m?.Origin === 'EXTERNAL' && m.KeyState !== 'Enabled' && m.KeyState !== 'Disabled') throw invalid('KMS.2701');
  await call('DeleteImportedKeyMaterial', { KeyId: keyId }, ctx, services);
  return {};
};
