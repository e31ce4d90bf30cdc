import type { OperationHandler } from './context';
import { encryptionAlgorithmFor, isRsa } from './shared/algorithms';
import { PayloadKind } from './shared/ciphertext';
import { stopIfDryRun } from './shared/checks';
import { seal } from './shared/envelope';
import { loadKeyFor } from './shared/key-resolution';
import { checkRsaEncryption, rsaEncrypt } from './shared/rsa-encryption';

export const encrypt: OperationHandler<'Encrypt'> = async (input, ctx, services) => {
  const key = await loadKeyFor(services, ctx, input.KeyId, {
    operation: 'Encrypt',
    usage: 'ENCRYPT_DECRYPT',
    conditions: { encryptionContext: input.EncryptionContext, encryptionAlgorithm: input.EncryptionAlgorithm ?? 'SYMMETRIC_DEFAULT' },
  });
  const algorithm = encryptionAlgorithmFor(key, input.EncryptionAlgorithm);
  if (isRsa(key.keySpec)) checkRsaEncryption(key, algorithm, input.EncryptionContext, input.Plaintext.length);
  stopIfDryRun(input.DryRun);
  const blob = isRsa(key.keySpec)
    ? await rsaEncrypt(services, key, algorithm, input.EncryptionContext, input.Plaintext)
    : await seal(services, { ctx, operation: 'Encrypt' }, key, input.EncryptionContext, { kind: PayloadKind.Plaintext, plaintext: input.Plaintext });
  return { CiphertextBlob: blob, KeyId: key.arn, EncryptionAlgorithm: algorithm };
};
