import { KmsError } from '../errors';
import type { OperationHandler } from './context';
import { stopIfDryRun } from './shared/checks';
import { currentMaterial } from './shared/envelope';
import { loadKeyFor } from './shared/key-resolution';

export const verify: OperationHandler<'Verify'> = async (input, ctx, services) => {
  const key = await loadKeyFor(services, ctx, input.KeyId, {
    operation: 'Verify',
    usage: 'SIGN_VERIFY',
    conditions: { signingAlgorithm: input.SigningAlgorithm, messageType: input.MessageType ?? 'RAW' },
  });
  const messageType = input.MessageType ?? 'RAW';
  services.custody.signatures.checkSignatureRequest(key.keySpec, input.SigningAlgorithm, messageType, input.Message);
  stopIfDryRun(input.DryRun);
  const valid = await services.custody.signatures.verify(currentMaterial(key), key.keySpec, input.SigningAlgorithm, messageType, input.Message, input.Signature);
  // AWS raises on a bad signature rather than answering SignatureValid: false.
  if (!valid) throw new KmsError('KMSInvalidSignatureException', '');
  return { KeyId: key.arn, SignatureValid: true, SigningAlgorithm: input.SigningAlgorithm };
};
