import { KmsError } from '../errors';
import type { OperationHandler } from './context';
import { algorithmsOf } from './shared/algorithms';
import { currentMaterial } from './shared/envelope';
import { loadKeyFor } from './shared/key-resolution';

export const getPublicKey: OperationHandler<'GetPublicKey'> = async (input, ctx, services) => {
  const key = await loadKeyFor(services, ctx, input.KeyId, { operation: 'GetPublicKey' });
  if (key.keySpec === 'SYMMETRIC_DEFAULT' || key.keySpec.startsWith('HMAC_')) {
    throw new KmsError('UnsupportedOperationException', `${key.arn} key spec ${key.keySpec} has no public key.`);
  }
  const { MacAlgorithms: _none, ...algorithms } = algorithmsOf(key.keySpec, key.keyUsage);
  return {
    KeyId: key.arn,
    PublicKey: await services.custody.asymmetric.publicKey(currentMaterial(key), key.keySpec),
    CustomerMasterKeySpec: key.keySpec as never,
    KeySpec: key.keySpec,
    KeyUsage: key.keyUsage,
    ...algorithms,
  };
};
