import { KmsError } from '../errors';
import { checkAsymmetricWrapping, type WrappingAlgorithm, type WrappingKeySpec } from '../custody/key-import';
import type { OperationHandler } from './context';
import { checkImportTarget } from './shared/import-checks';
import { IMPORT_PARAMETERS_VALIDITY_MS, newImportToken } from './shared/import-token';
import { createInToken } from './shared/key-mutation';
import { loadKeyFor } from './shared/key-resolution';

/**
 * A new RSA wrapping key pair, generated in the token, and an import token bound to the key,
 * that wrapping key and the wrapping algorithm; both valid for 24 hours. The wrapping id is
 * the pair's creation id (the creation protocol of shared/key-mutation.ts).
 */
export const getParametersForImport: OperationHandler<'GetParametersForImport'> = async (input, ctx, services) => {
  const key = await loadKeyFor(services, ctx, input.KeyId, {
    operation: 'GetParametersForImport',
    states: 'any',
    conditions: { wrappingAlgorithm: input.WrappingAlgorithm, wrappingKeySpec: input.WrappingKeySpec },
  });
  checkImportTarget(key);
  if (input.WrappingKeySpec === 'SM2' || input.WrappingAlgorithm === 'SM2PKE') {
    throw new KmsError('UnsupportedOperationException', 'SM2 wrapping keys are available only in AWS China Regions; the token has no SM2 mechanisms.');
  }
  // GetParametersForImport's WrappingAlgorithm documentation: "As of October 10, 2023, KMS does
  // not support the RSAES_PKCS1_V1_5 wrapping algorithm." RSAES_OAEP_SHA_1 keeps the material
  // inside the token just as well (docs/key-custody.md).
  if (input.WrappingAlgorithm === 'RSAES_PKCS1_V1_5' && !ctx.offersPkcs1v15Wrapping) {
    throw new KmsError('ValidationException', 'The RSAES_PKCS1_V1_5 wrapping algorithm is not supported. Use RSAES_OAEP_SHA_1, RSAES_OAEP_SHA_256, RSA_AES_KEY_WRAP_SHA_1 or RSA_AES_KEY_WRAP_SHA_256.');
  }
  const spec = input.WrappingKeySpec as WrappingKeySpec;
  const algorithm = input.WrappingAlgorithm as WrappingAlgorithm;
  checkAsymmetricWrapping(key.keySpec, algorithm, spec);
  const { token, wrappingId, tokenHash } = newImportToken(key.keyId);
  const validTo = services.clock.now() + IMPORT_PARAMETERS_VALIDITY_MS;
  const publicKey = await createInToken(services, {
    keyId: key.keyId,
    purpose: 'wrapping',
    creationId: wrappingId,
    make: () => services.custody.importer.generateWrappingKey({ keyId: key.keyId, wrappingId }, spec),
    commit: async (tx, spki) => {
      const current = await tx.getKey(key);
      if (!current) throw new KmsError('NotFoundException', `Key '${key.arn}' does not exist`);
      checkImportTarget(current);
      tx.putKey({
        ...current,
        importParameters: [...(current.importParameters ?? []), { wrappingId, wrappingKeySpec: spec, wrappingAlgorithm: algorithm, tokenHash, validTo }],
      });
      return { value: spki, keep: true };
    },
  });
  return { KeyId: key.arn, ImportToken: token, PublicKey: publicKey, ParametersValidTo: new Date(validTo) };
};
