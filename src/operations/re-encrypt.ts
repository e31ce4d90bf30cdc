import type { OperationHandler } from './context';
import { PayloadKind } from './shared/ciphertext';
import { requireEncryptionAlgorithm, stopIfDryRun } from './shared/checks';
import { keyOfCiphertext } from './shared/ciphertext-key';
import { currentMaterial, materialIdOf, open, seal } from './shared/envelope';
import { checkKeyFor, loadKeyFor } from './shared/key-resolution';

export const reEncrypt: OperationHandler<'ReEncrypt'> = async (input, ctx, services) => {
  const { key: source, parsed } = await keyOfCiphertext(services, ctx, input.CiphertextBlob, {
    operation: 'ReEncrypt',
    member: 'SourceKeyId',
    value: input.SourceKeyId,
  });
  checkKeyFor(ctx, source, { operation: 'ReEncrypt', action: 'kms:ReEncryptFrom', usage: 'ENCRYPT_DECRYPT' });
  const destination = await loadKeyFor(services, ctx, input.DestinationKeyId, {
    operation: 'ReEncrypt',
    member: 'DestinationKeyId',
    action: 'kms:ReEncryptTo',
    usage: 'ENCRYPT_DECRYPT',
  });
  requireEncryptionAlgorithm(source, input.SourceEncryptionAlgorithm);
  requireEncryptionAlgorithm(destination, input.DestinationEncryptionAlgorithm);
  stopIfDryRun(input.DryRun);

  const payload = await open(services, source, parsed, input.SourceEncryptionContext);
  let blob: Buffer;
  if (payload.kind === PayloadKind.WrappedSecret) {
    // A data key made without plaintext moves between master keys inside the token.
    const wrapped = await services.custody.rewrapSecret(
      { keyId: source.keyId, version: parsed.materialVersion },
      payload.wrapped,
      currentMaterial(destination),
    );
    blob = await seal(services, destination, input.DestinationEncryptionContext, { ...payload, wrapped });
  } else {
    try {
      blob = await seal(services, destination, input.DestinationEncryptionContext, payload);
    } finally {
      payload.plaintext.fill(0);
    }
  }
  return {
    CiphertextBlob: blob,
    SourceKeyId: source.arn,
    KeyId: destination.arn,
    SourceEncryptionAlgorithm: 'SYMMETRIC_DEFAULT',
    DestinationEncryptionAlgorithm: 'SYMMETRIC_DEFAULT',
    SourceKeyMaterialId: materialIdOf(source, parsed.materialVersion),
    DestinationKeyMaterialId: materialIdOf(destination, destination.currentVersion),
  };
};
