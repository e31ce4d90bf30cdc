import { createPublicKey } from 'node:crypto';
import { JWK_CURVE } from '../custody/key-custody';
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
  const peerPoint = uncompressedPoint(input.PublicKey, JWK_CURVE[key.keySpec]);
  stopIfDryRun(input.DryRun);
  const secret = await services.custody.asymmetric.deriveSharedSecret(currentMaterial(key), key.keySpec, peerPoint);
  return { KeyId: key.arn, SharedSecret: secret, KeyAgreementAlgorithm: input.KeyAgreementAlgorithm, KeyOrigin: key.origin };
};

/**
 * The peer's public key must be a DER SubjectPublicKeyInfo on the key's own curve (AWS
 * answers anything else with an empty ValidationException).
 */
function uncompressedPoint(spki: Buffer, curve: string | undefined): Buffer {
  try {
    const jwk = createPublicKey({ key: spki, format: 'der', type: 'spki' }).export({ format: 'jwk' });
    if (jwk.kty !== 'EC' || jwk.crv !== curve || !jwk.x || !jwk.y) throw new Error('curve mismatch');
    return Buffer.concat([Buffer.from([4]), Buffer.from(jwk.x, 'base64url'), Buffer.from(jwk.y, 'base64url')]);
  } catch {
    throw new KmsError('ValidationException', '');
  }
}
