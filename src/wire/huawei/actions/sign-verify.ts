import type { MessageType, SigningAlgorithmSpec } from '../../../model/generated/types';
import { KmsError } from '../../../errors';
import { invalid } from '../errors';
import { type Action, base64Member, type Body, call, keyIdOf, keyRef, text } from './shared';

// Signature and verification (Sign, ValidateSignature, ShowPublicKey in the Huawei reference)

const SIGNING_ALGORITHMS: ReadonlySet<string> = new Set([
  'RSASSA_PSS_SHA_256',
  'RSASSA_PSS_SHA_384',
  'RSASSA_PSS_SHA_512',
  'RSASSA_PKCS1_V1_5_SHA_256',
  'RSASSA_PKCS1_V1_5_SHA_384',
  'RSASSA_PKCS1_V1_5_SHA_512',
  'ECDSA_SHA_256',
  'ECDSA_SHA_384',
  'ECDSA_SHA_512',
]);

/** message (Base64, under 4096 bytes), signing_algorithm and message_type (default DIGEST, as Huawei documents). */
function signingRequest(body: Body): { message: Buffer; algorithm: SigningAlgorithmSpec; messageType: MessageType } {
  const message = base64Member(body, 'message');
  if (message.length === 0 || message.length >= 4096) throw invalid('KMS.0308', 'message must be Base64 of 1 to 4095 bytes.');
  const algorithm = text(body, 'signing_algorithm', true);
  if (!SIGNING_ALGORITHMS.has(algorithm)) throw invalid('KMS.0308', `signing_algorithm ${algorithm} is not supported.`);
  const messageType = text(body, 'message_type') ?? 'DIGEST';
  if (messageType !== 'DIGEST' && messageType !== 'RAW') throw invalid('KMS.0308', 'message_type must be DIGEST or RAW.');
  return { message, algorithm: algorithm as SigningAlgorithmSpec, messageType };
}

export const sign: Action = async (body, ctx, services) => {
  const { message, algorithm, messageType } = signingRequest(body);
  const out = await call('Sign', { KeyId: keyRef(body), Message: message, SigningAlgorithm: algorithm, MessageType: messageType }, ctx, services);
  return { key_id: keyIdOf(out.KeyId), signature: Buffer.from(out.Signature!).toString('base64') };
};

export const verify: Action = async (body, ctx, services) => {
  const { message, algorithm, messageType } = signingRequest(body);
  const signature = base64Member(body, 'signature');
  const keyId = keyRef(body);
  try {
    const out = await call('Verify', { KeyId: keyId, Message: message, Signature: signature, SigningAlgorithm: algorithm, MessageType: messageType }, ctx, services);
    return { key_id: keyIdOf(out.KeyId), signature_valid: 'true' };
  } catch (err) {
    // Huawei answers a signature that does not verify with signature_valid "false", not an error.
    if (err instanceof KmsError && err.name === 'KMSInvalidSignatureException') {
      const { KeyMetadata: m } = await call('DescribeKey', { KeyId: keyId }, ctx, services);
      return { key_id: m!.KeyId, signature_valid: 'false' };
    }
    throw err;
  }
};
