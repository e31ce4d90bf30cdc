import { peerPointOf } from '../custody/public-keys';
import { KmsError } from '../errors';
import type { OperationHandler } from './context';
import { refuseRecipient, stopIfDryRun } from './shared/checks';
import { currentMaterial } from './shared/envelope';
import { loadKeyFor } from './shared/key-resolution';

export const deriveSharedSecret: OperationHandler<'DeriveSharedSecret'> = async (input, ctx, services) => {
  refuseRecipient(input.Recipient);
  const key = await loadKeyFor(services, ctx, input.KeyId, {
    operation: 'DeriveSharedSecret',
    usage: 'KEY_AGREEMENT',
    conditions: { keyAgreementAlgorithm: input.KeyAgreementAlgorithm },
  });
  // AWS answers a public key that is not a DER SPKI on the key's curve with an empty message.
  const peerPoint = peerPointOf(input.PublicKey, key.keySpec);
  if (!peerPoint) throw new KmsError('ValidationException', '');
  stopIfDryRun(input.DryRun);
  const secret = await services.custody.asymmetric.deriveSharedSecret(currentMaterial(key), key.keySpec, peerPoint);
  return { KeyId: key.arn, SharedSecret: secret, KeyAgreementAlgorithm: input.KeyAgreementAlgorithm, KeyOrigin: key.origin };
};

