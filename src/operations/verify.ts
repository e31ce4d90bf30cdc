import { KmsError } from '../errors';
import type { OperationHandler } from './context';
import { stopIfDryRun } from './shared/checks';
import { currentMaterial } from './shared/envelope';
import { loadSigningKey } from './shared/signing';

export const verify: OperationHandler<'Verify'> = async (input, ctx, services) => {
  const { key, messageType } = await loadSigningKey(services, ctx, 'Verify', input);
  stopIfDryRun(input.DryRun);
  const valid = await services.custody.signatures.verify(currentMaterial(key), key.keySpec, input.SigningAlgorithm, messageType, input.Message, input.Signature);
  // AWS raises on a bad signature rather than answering SignatureValid: false.
  if (!valid) throw new KmsError('KMSInvalidSignatureException', '');
  return { KeyId: key.arn, SignatureValid: true, SigningAlgorithm: input.SigningAlgorithm };
};
