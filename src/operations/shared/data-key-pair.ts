import { KmsError } from '../../errors';
import type { DataKeyPairSpec, KeySpec } from '../../model/generated/types';
import type { RequestContext, Services } from '../context';
import { PayloadKind } from './ciphertext';
import { refuseRecipient, requireSymmetricEncryptionKey, stopIfDryRun } from './checks';
import { currentMaterial, materialIdOf, seal } from './envelope';
import { loadKeyFor } from './key-resolution';

/**
 * GenerateDataKeyPair(+WithoutPlaintext): the pair is generated in the token and its
 * private key wrapped there under the symmetric KMS key; the blob carries that wrapped
 * PKCS#8 key (payload kind 1, self-delimiting DER), bound to the encryption context, and
 * Decrypt returns the PKCS#8 bytes as AWS does.
 */
export async function generateDataKeyPair(
  services: Services,
  ctx: RequestContext,
  operation: 'GenerateDataKeyPair' | 'GenerateDataKeyPairWithoutPlaintext',
  input: { KeyId: string; KeyPairSpec: DataKeyPairSpec; EncryptionContext?: Record<string, string>; DryRun?: boolean; Recipient?: unknown },
): Promise<{ blob: Buffer; publicKey: Buffer; keyArn: string; keyMaterialId: string | undefined; privateKey?: Buffer }> {
  refuseRecipient(input.Recipient);
  const key = await loadKeyFor(services, ctx, input.KeyId, {
    operation,
    usage: 'ENCRYPT_DECRYPT',
    // kms:EncryptionAlgorithm is the algorithm used, SYMMETRIC_DEFAULT, though the request cannot name one
    // (KMS developer guide, kms:EncryptionAlgorithm: "Encryption algorithm used for the operation").
    conditions: { encryptionContext: input.EncryptionContext, encryptionAlgorithm: 'SYMMETRIC_DEFAULT', dataKeyPairSpec: input.KeyPairSpec },
  });
  if (key.customKeyStoreId) {
    throw new KmsError('UnsupportedOperationException', `${key.arn} is in a custom key store; KMS keys in custom key stores cannot generate data key pairs.`);
  }
  requireSymmetricEncryptionKey(key, operation);
  const pairSpec = input.KeyPairSpec as KeySpec;
  const capability = services.custody.canGenerate(pairSpec);
  if (!capability.ok) {
    throw new KmsError('UnsupportedOperationException', `KeyPairSpec ${pairSpec} is not supported by this key store: the token lacks ${capability.missing}.`);
  }
  services.custody.asymmetric.checkDataKeyPair(pairSpec);
  stopIfDryRun(input.DryRun);
  const material = currentMaterial(key);
  const { publicKey, wrapped } = await services.custody.asymmetric.generateWrappedKeyPair(material, pairSpec);
  const blob = await seal(services, { ctx, operation }, key, input.EncryptionContext, { kind: PayloadKind.WrappedSecret, wrapped, length: 0 }, 'continuing');
  const result = { blob, publicKey, keyArn: key.arn, keyMaterialId: materialIdOf(key, key.currentVersion) };
  if (operation === 'GenerateDataKeyPairWithoutPlaintext') return result;
  return { ...result, privateKey: await services.custody.symmetric.unwrapSecret(material, wrapped, 0, 'continuing') };
}
