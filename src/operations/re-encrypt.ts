import type { OperationHandler } from './context';
import { encryptionAlgorithmFor, isRsa } from './shared/algorithms';
import { PayloadKind } from './shared/ciphertext';
import { stopIfDryRun } from './shared/checks';
import { openCiphertext, plaintextOf, stopAfterOpening } from './shared/decryption';
import { currentMaterial, materialIdOf, materialRef, seal } from './shared/envelope';
import { findKey, loadKeyFor } from './shared/key-resolution';
import { KEY_ID_ACCEPTS_ALIAS } from '../model/generated/shapes';
import { parseCiphertext } from './shared/ciphertext';
import type { RequestContext, Services } from './context';
import type { ReEncryptRequest } from '../model/generated/types';
import { checkRsaEncryption, rsaEncrypt } from './shared/rsa-encryption';
import { custodyOf } from './shared/custom-key-stores';

/**
 * kms:ReEncryptOnSameKey: whether the ciphertext's key (named by the blob, or by SourceKeyId
 * for an RSA ciphertext) is the destination key. Known before either key is authorised.
 */
async function sameKey(services: Services, ctx: RequestContext, input: ReEncryptRequest): Promise<boolean | undefined> {
  const lookup = (value: string, member: string) =>
    findKey(services, ctx, value, KEY_ID_ACCEPTS_ALIAS[`ReEncrypt.${member}`] ?? false).then((k) => k.keyId, () => undefined);
  if (input.DestinationKeyId === undefined) return undefined;
  let source: string | undefined;
  try {
    source = input.CiphertextBlob === undefined ? undefined : parseCiphertext(input.CiphertextBlob).keyId;
  } catch {
    source = undefined;
  }
  if (source === undefined && input.SourceKeyId !== undefined) source = await lookup(input.SourceKeyId, 'SourceKeyId');
  if (source === undefined) return undefined;
  return source === (await lookup(input.DestinationKeyId, 'DestinationKeyId'));
}

export const reEncrypt: OperationHandler<'ReEncrypt'> = async (input, ctx, services) => {
  const reEncryptOnSameKey = await sameKey(services, ctx, input);
  const destination = await loadKeyFor(services, ctx, input.DestinationKeyId, {
    operation: 'ReEncrypt',
    member: 'DestinationKeyId',
    action: 'kms:ReEncryptTo',
    usage: 'ENCRYPT_DECRYPT',
    conditions: {
      encryptionContext: input.DestinationEncryptionContext,
      encryptionAlgorithm: input.DestinationEncryptionAlgorithm ?? 'SYMMETRIC_DEFAULT',
      reEncryptOnSameKey,
    },
  });
  const destinationAlgorithm = encryptionAlgorithmFor(destination, input.DestinationEncryptionAlgorithm);
  // Before the source is authorised and opened; the plaintext's length is checked once it is.
  if (isRsa(destination.keySpec)) checkRsaEncryption(destination, destinationAlgorithm, input.DestinationEncryptionContext);
  const source = await openCiphertext(services, ctx, {
    operation: 'ReEncrypt',
    member: 'SourceKeyId',
    action: 'kms:ReEncryptFrom',
    blob: input.CiphertextBlob,
    keyId: input.SourceKeyId,
    algorithm: input.SourceEncryptionAlgorithm,
    context: input.SourceEncryptionContext,
    conditions: { reEncryptOnSameKey },
    dryRun: input.DryRun,
    dryRunModifiers: input.DryRunModifiers,
    stopIfDryRun,
  });
  if (input.DryRun && isRsa(destination.keySpec)) {
    const plaintext = await plaintextOf(services, source);
    try {
      checkRsaEncryption(destination, destinationAlgorithm, input.DestinationEncryptionContext, plaintext.length);
    } finally {
      plaintext.fill(0);
    }
  }
  stopAfterOpening(source, input.DryRun, stopIfDryRun);
  const { payload } = source;
  let blob: Buffer;
  const custody = custodyOf(services, source.key);
  if (payload.kind === PayloadKind.WrappedSecret && !isRsa(destination.keySpec) && custody === custodyOf(services, destination)) {
    // A data key made without plaintext moves between symmetric keys inside the token
    // (between two tokens it cannot: it is unwrapped and sealed as a plaintext payload).
    const wrapped = await custody.symmetric.rewrapSecret(
      materialRef(source.key, source.materialVersion),
      payload.wrapped,
      currentMaterial(destination),
    );
    blob = await seal(services, { ctx, operation: 'ReEncrypt' }, destination, input.DestinationEncryptionContext, { ...payload, wrapped }, 'continuing');
  } else {
    const plaintext = await plaintextOf(services, source);
    try {
      blob = isRsa(destination.keySpec)
        ? await rsaEncrypt(services, destination, destinationAlgorithm, input.DestinationEncryptionContext, plaintext)
        : await seal(services, { ctx, operation: 'ReEncrypt' }, destination, input.DestinationEncryptionContext, { kind: PayloadKind.Plaintext, plaintext }, 'continuing');
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
