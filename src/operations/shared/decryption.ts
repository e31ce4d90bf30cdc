import { KmsError } from '../../errors';
import type { EncryptionAlgorithmSpec, OperationName } from '../../model/generated/types';
import type { KeyRecord } from '../../store/records';
import type { RequestContext, Services } from '../context';
import { encryptionAlgorithmFor, isRsa } from './algorithms';
import { keyOfCiphertext } from './ciphertext-key';
import { materialIdOf, materialRef, open, type Payload } from './envelope';
import type { RequestConditions } from '../../access/condition-keys';
import { checkKeyFor, findKey } from './key-resolution';
import { KEY_ID_ACCEPTS_ALIAS } from '../../model/generated/shapes';
import { PayloadKind } from './ciphertext';
import { refuseAsymmetricContext, rsaDecrypt } from './rsa-encryption';
import { custodyOf } from './custom-key-stores';

export interface Opened {
  key: KeyRecord;
  algorithm: EncryptionAlgorithmSpec;
  payload: Payload;
  /** Material version that decrypted (symmetric keys). */
  materialVersion: number;
  keyMaterialId: string | undefined;
}

/**
 * The decrypting half shared by Decrypt and ReEncrypt. DryRun without IGNORE_CIPHERTEXT
 * validates the ciphertext as AWS does ("IGNORE_CIPHERTEXT: authorization validation without
 * ciphertext validation"): the ciphertext is opened and the caller answers DryRun after it
 * (stopAfterOpening), so a wrong context or a damaged blob is InvalidCiphertextException. A symmetric blob names its own key
 * (a named key must match: IncorrectKeyException); an asymmetric ciphertext needs the key
 * and algorithm named, as AWS requires.
 */
export async function openCiphertext(
  services: Services,
  ctx: RequestContext,
  request: {
    operation: OperationName;
    member: string;
    action: string;
    blob: Buffer | undefined;
    keyId: string | undefined;
    algorithm: EncryptionAlgorithmSpec | undefined;
    context: Record<string, string> | undefined;
    /** Key policy condition values beyond the encryption context. */
    conditions?: RequestConditions;
    /** Only for IGNORE_CIPHERTEXT, answered here; otherwise the caller answers DryRun after opening. */
    dryRun: boolean | undefined;
    /** DryRunModifiers: IGNORE_CIPHERTEXT asks for the authorisation check alone (with DryRun only). */
    dryRunModifiers?: readonly string[];
    stopIfDryRun: (dryRun: boolean | undefined) => void;
  },
): Promise<Opened> {
  if (request.dryRun && request.dryRunModifiers?.includes('IGNORE_CIPHERTEXT')) {
    await checkNamedKeyOnly(services, ctx, request);
    request.stopIfDryRun(request.dryRun);
  }
  if (request.keyId !== undefined && request.blob !== undefined) {
    const named = await findKey(services, ctx, request.keyId, KEY_ID_ACCEPTS_ALIAS[`${request.operation}.${request.member}`] ?? false);
    if (isRsa(named.keySpec)) {
      await checkKeyFor(services, ctx, named, {
        operation: request.operation,
        action: request.action,
        usage: 'ENCRYPT_DECRYPT',
        conditions: { ...request.conditions, encryptionContext: request.context, encryptionAlgorithm: request.algorithm },
        requestAlias: aliasNamed(request.keyId),
      });
      const algorithm = encryptionAlgorithmFor(named, request.algorithm);
      refuseAsymmetricContext(request.context);
      const plaintext = await rsaDecrypt(services, named, algorithm, request.context, request.blob);
      return { key: named, algorithm, payload: { kind: PayloadKind.Plaintext, plaintext }, materialVersion: named.currentVersion, keyMaterialId: undefined };
    }
  }
  const { key, parsed } = await keyOfCiphertext(services, ctx, request.blob, {
    operation: request.operation,
    member: request.member,
    value: request.keyId,
  });
  await checkKeyFor(services, ctx, key, {
    operation: request.operation,
    action: request.action,
    usage: 'ENCRYPT_DECRYPT',
    conditions: { ...request.conditions, encryptionContext: request.context, encryptionAlgorithm: request.algorithm ?? 'SYMMETRIC_DEFAULT' },
    viaCiphertext: request.keyId === undefined,
    requestAlias: aliasNamed(request.keyId),
  });
  const algorithm = encryptionAlgorithmFor(key, request.algorithm);
  if (algorithm !== 'SYMMETRIC_DEFAULT') throw new KmsError('InvalidCiphertextException', '');
  const payload = await open(services, { ctx, operation: request.operation }, key, parsed, request.context);
  return { key, algorithm, payload, materialVersion: parsed.materialVersion, keyMaterialId: materialIdOf(key, parsed.materialVersion) };
}


/**
 * DryRun with IGNORE_CIPHERTEXT ("authorization validation without ciphertext validation"):
 * the named key's authorisation, state, usage and algorithm; the ciphertext, which may be
 * absent or anything at all, is not read. Without a named key there is nothing to check.
 */
async function checkNamedKeyOnly(
  services: Services,
  ctx: RequestContext,
  request: { operation: OperationName; member: string; action: string; keyId: string | undefined; algorithm: EncryptionAlgorithmSpec | undefined; context: Record<string, string> | undefined; conditions?: RequestConditions },
): Promise<void> {
  if (request.keyId === undefined) {
    throw new KmsError('ValidationException', `${request.member} is required when DryRun is true and DryRunModifiers is IGNORE_CIPHERTEXT.`);
  }
  const key = await findKey(services, ctx, request.keyId, KEY_ID_ACCEPTS_ALIAS[`${request.operation}.${request.member}`] ?? false);
  await checkKeyFor(services, ctx, key, {
    operation: request.operation,
    action: request.action,
    usage: 'ENCRYPT_DECRYPT',
    conditions: { ...request.conditions, encryptionContext: request.context, encryptionAlgorithm: request.algorithm ?? (isRsa(key.keySpec) ? undefined : 'SYMMETRIC_DEFAULT') },
    requestAlias: aliasNamed(request.keyId),
  });
  encryptionAlgorithmFor(key, request.algorithm);
}
function aliasNamed(keyId: string | undefined): string | undefined {
  if (keyId === undefined) return undefined;
  if (keyId.startsWith('alias/')) return keyId;
  return /^arn:[^:]+:kms:[^:]*:\d{12}:(alias\/.+)$/.exec(keyId)?.[1];
}

/** The plaintext of an opened ciphertext; a token-wrapped secret is unwrapped in the token. */
export async function plaintextOf(services: Services, opened: Opened): Promise<Buffer> {
  const { payload } = opened;
  if (payload.kind === PayloadKind.Plaintext) return payload.plaintext;
  return custodyOf(services, opened.key).symmetric.unwrapSecret(materialRef(opened.key, opened.materialVersion), payload.wrapped, payload.length);
}

/** DryRun after the ciphertext was opened: what it held is forgotten before answering. */
export function stopAfterOpening(opened: Opened, dryRun: boolean | undefined, stopIfDryRun: (dryRun: boolean | undefined) => void): void {
  if (!dryRun) return;
  if (opened.payload.kind === PayloadKind.Plaintext) opened.payload.plaintext.fill(0);
  stopIfDryRun(dryRun);
}
