import { KmsError } from '../errors';
import { checkAsymmetricWrapping, type WrappingAlgorithm, type WrappingKeySpec } from '../custody/key-import';
import type { OperationHandler } from './context';
import { checkImportTarget } from './shared/import-checks';
import { IMPORT_PARAMETERS_VALIDITY_MS, newImportToken } from './shared/import-token';
import { loadKeyFor } from './shared/key-resolution';

/**
 * A new RSA wrapping key pair, generated in the token, and an import token bound to the key,
 * that wrapping key and the wrapping algorithm; both valid for 24 hours. Token first, store
 * second: a crash in between leaves a wrapping pair that start-up reconciliation destroys.
 */
export const getParametersForImport: OperationHandler<'GetParametersForImport'> = async (input, ctx, services) => {
  const key = await loadKeyFor(services, ctx, input.KeyId, {
    operation: 'GetParametersForImport',
    allowedStates: 'any',
    conditions: { wrappingAlgorithm: input.WrappingAlgorithm, wrappingKeySpec: input.WrappingKeySpec },
  });
  checkImportTarget(key);
  if (input.WrappingKeySpec === 'SM2' || input.WrappingAlgorithm === 'SM2PKE') {
    throw new KmsError('UnsupportedOperationException', 'SM2 wrapping keys are available only in AWS China Regions; the token has no SM2 mechanisms.');
  }
  const spec = input.WrappingKeySpec as WrappingKeySpec;
  const algorithm = input.WrappingAlgorithm as WrappingAlgorithm;
  checkAsymmetricWrapping(key.keySpec, algorithm, spec);
  const { token, wrappingId, tokenHash } = newImportToken(key.keyId);
  const ref = { keyId: key.keyId, wrappingId };
  const publicKey = await services.custody.importer.generateWrappingKey(ref, spec);
  const validTo = services.clock.now() + IMPORT_PARAMETERS_VALIDITY_MS;
  try {
    await services.store.transact(async (tx) => {
      const current = await tx.getKey(key);
      if (!current) throw new KmsError('NotFoundException', `Key '${key.arn}' does not exist`);
      checkImportTarget(current);
      tx.putKey({
        ...current,
        importParameters: [...(current.importParameters ?? []), { wrappingId, wrappingKeySpec: spec, wrappingAlgorithm: algorithm, tokenHash, validTo }],
      });
    });
  } catch (err) {
    await services.custody.importer.destroyWrappingKey(ref).catch(() => undefined);
    throw err;
  }
  return { KeyId: key.arn, ImportToken: token, PublicKey: publicKey, ParametersValidTo: new Date(validTo) };
};
