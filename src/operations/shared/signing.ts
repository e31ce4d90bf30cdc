import type { OperationShapes } from '../../model/generated/types';
import type { KeyRecord } from '../../store/records';
import type { RequestContext, Services } from '../context';
import { loadKeyFor } from './key-resolution';

/**
 * What Sign and Verify check alike before the token is asked: the caller may use the key to
 * sign and verify (kms:SigningAlgorithm and kms:MessageType as conditions), and the algorithm,
 * message type and message suit the key's spec. The message type is RAW unless the request
 * names one, as in AWS.
 */
export async function loadSigningKey(
  services: Services,
  ctx: RequestContext,
  operation: 'Sign' | 'Verify',
  input: Pick<OperationShapes['Sign']['input'], 'KeyId' | 'Message' | 'MessageType' | 'SigningAlgorithm'>,
): Promise<{ key: KeyRecord; messageType: NonNullable<OperationShapes['Sign']['input']['MessageType']> }> {
  const messageType = input.MessageType ?? 'RAW';
  const key = await loadKeyFor(services, ctx, input.KeyId, {
    operation,
    usage: 'SIGN_VERIFY',
    conditions: { signingAlgorithm: input.SigningAlgorithm, messageType },
  });
  services.custody.signatures.checkSignatureRequest(key.keySpec, input.SigningAlgorithm, messageType, input.Message);
  return { key, messageType };
}
