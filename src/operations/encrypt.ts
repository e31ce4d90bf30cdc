import type { OperationHandler } from './context';
import { PayloadKind } from './shared/ciphertext';
import { requireEncryptionAlgorithm, stopIfDryRun } from './shared/checks';
import { seal } from './shared/envelope';
import { loadKeyFor } from './shared/key-resolution';

export const encrypt: OperationHandler<'Encrypt'> = async (input, ctx, services) => {
  const key = await loadKeyFor(services, ctx, input.KeyId, { operation: 'Encrypt', usage: 'ENCRYPT_DECRYPT' });
  requireEncryptionAlgorithm(key, input.EncryptionAlgorithm);
  stopIfDryRun(input.DryRun);
  const blob = await seal(services, key, input.EncryptionContext, { kind: PayloadKind.Plaintext, plaintext: input.Plaintext });
  return { CiphertextBlob: blob, KeyId: key.arn, EncryptionAlgorithm: 'SYMMETRIC_DEFAULT' };
};
