import type { OperationHandler } from './context';
import { encryptionAlgorithmFor, isRsa } from './shared/algorithms';
import { PayloadKind } from './shared/ciphertext';
import { stopIfDryRun } from './shared/checks';
import { openCiphertext, plaintextOf } from './shared/decryption';
import { currentMaterial, materialIdOf, seal } from './shared/envelope';
import { loadKeyFor } from './shared/key-resolution';
import { rsaEncrypt } from './shared/rsa-encryption';

export const reEncrypt: OperationHandler<'ReEncrypt'> = async (input, ctx, services) => {
  const destination = await loadKeyFor(services, ctx, input.DestinationKeyId, {
    operation: 'ReEncrypt',
    member: 'DestinationKeyId',
    action: 'kms:ReEncryptTo',
    usage: 'ENCRYPT_DECRYPT',
    conditions: {
      encryptionContext: input.DestinationEncryptionContext,
      encryptionAlgorithm: input.DestinationEncryptionAlgorithm ?? 'SYMMETRIC_DEFAULT',
    },
  });
  const destinationAlgorithm = encryptionAlgorithmFor(destination, input.DestinationEncryptionAlgorithm);
  const source = await openCiphertext(services, ctx, {
    operation: 'ReEncrypt',
    member: 'SourceKeyId',
    action: 'kms:ReEncryptFrom',
    blob: input.CiphertextBlob,
    keyId: input.SourceKeyId,
    algorithm: input.SourceEncryptionAlgorithm,
    context: input.SourceEncryptionContext,
    dryRun: input.DryRun,
    stopIfDryRun,
  });
  const { payload } = source;
  let blob: Buffer;
  if (payload.kind === PayloadKind.WrappedSecret && !isRsa(destination.keySpec)) {
    // A data key made without plaintext moves between symmetric keys inside the token.
    const wrapped = await services.custody.rewrapSecret(
      { keyId: source.key.keyId, version: source.materialVersion },
      payload.wrapped,
      currentMaterial(destination),
    );
    blob = await seal(services, destination, input.DestinationEncryptionContext, { ...payload, wrapped });
  } else {
    const plaintext = await plaintextOf(services, source);
    try {
      blob = isRsa(destination.keySpec)
        ? await rsaEncrypt(services, destination, destinationAlgorithm, input.DestinationEncryptionContext, plaintext)
        : await seal(services, destination, input.DestinationEncryptionContext, { kind: PayloadKind.Plaintext, plaintext });
    } finally {
      plaintext.fill(0);
    }
  }
  return {
    CiphertextBlob: blob,
    SourceKeyId: source.key.arn,
    KeyId: destination.arn,
    SourceEncryptionAlgorithm: source.algorithm,
    DestinationEncryptionAlgorithm: destinationAlgorithm,
    SourceKeyMaterialId: source.keyMaterialId,
    DestinationKeyMaterialId: isRsa(destination.keySpec) ? undefined : materialIdOf(destination, destination.currentVersion),
  };
};
