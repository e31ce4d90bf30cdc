import { KmsError } from '../errors';
import type { OperationHandler } from './context';
import { refuseRecipient } from './shared/checks';
import { checkAccountAction } from './shared/key-resolution';
import { findCustomKeyStore, keyStoresOf } from './shared/custom-key-stores';

export const generateRandom: OperationHandler<'GenerateRandom'> = async (input, ctx, services) => {
  checkAccountAction(services, ctx, 'kms:GenerateRandom');
  if (input.NumberOfBytes === undefined) throw new KmsError('ValidationException', 'NumberOfBytes is required.');
  refuseRecipient(input.Recipient);
  if (input.CustomKeyStoreId === undefined) return { Plaintext: await services.custody.random(input.NumberOfBytes) };
  // As on AWS: random bytes from an AWS_CLOUDHSM store's own device, which must be connected.
  const store = await findCustomKeyStore(services, ctx, input.CustomKeyStoreId);
  if (store.type !== 'AWS_CLOUDHSM') {
    throw new KmsError('UnsupportedOperationException', `GenerateRandom with a CustomKeyStoreId needs an AWS_CLOUDHSM key store; ${store.customKeyStoreId} is ${store.type}.`);
  }
  await keyStoresOf(services).settled(store.customKeyStoreId);
  const custody = keyStoresOf(services).custodyOf(store.customKeyStoreId);
  if (!custody) throw new KmsError('CustomKeyStoreInvalidStateException', `Custom key store ${store.customKeyStoreId} is not connected.`);
  return { Plaintext: await custody.random(input.NumberOfBytes) };
};
