import { KmsError } from '../errors';
import type { OperationHandler } from './context';
import { refuseRecipient } from './shared/checks';
import { checkAccountAction } from './shared/key-resolution';

export const generateRandom: OperationHandler<'GenerateRandom'> = async (input, ctx, services) => {
  checkAccountAction(services, ctx, 'kms:GenerateRandom');
  if (input.NumberOfBytes === undefined) throw new KmsError('ValidationException', 'NumberOfBytes is required.');
  if (input.CustomKeyStoreId !== undefined) {
    throw new KmsError('CustomKeyStoreNotFoundException', `Custom key store '${input.CustomKeyStoreId}' does not exist.`);
  }
  refuseRecipient(input.Recipient);
  return { Plaintext: await services.custody.random(input.NumberOfBytes) };
};
