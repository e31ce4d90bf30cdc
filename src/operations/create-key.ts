import { randomBytes, randomUUID } from 'node:crypto';
import { KmsError } from '../errors';
import type { KeySpec, KeyUsageType } from '../model/generated/types';
import { keyArn, type KeyRecord } from '../store/records';
import type { OperationHandler } from './context';
import { createInToken } from './shared/key-mutation';
import { checkKeyPolicy } from './shared/key-policy';
import { checkAccountAction } from './shared/key-resolution';
import { describedKey, keyMetadataOf } from './shared/key-metadata';
import { placementOf } from './shared/custom-key-store-keys';
import { checkExternalKeyFree } from './shared/xks-layer';
import { customKeyStoreNotFound } from './shared/custom-key-stores';
import { validateTags } from './shared/tags';

/** Key specs whose material can be imported (as AWS allows; Edwards, SM2 and ML-DSA are not among them). */
const IMPORTABLE_SPECS = new Set<string>(['SYMMETRIC_DEFAULT', 'RSA_2048', 'RSA_3072', 'RSA_4096', 'ECC_NIST_P256', 'ECC_NIST_P384', 'ECC_NIST_P521', 'ECC_SECG_P256K1']);

export function defaultKeyPolicy(accountId: string): string {
  return JSON.stringify({
    Version: '2012-10-17',
    Id: 'key-default-1',
    Statement: [
      {
        Sid: 'Enable IAM User Permissions',
        Effect: 'Allow',
        Principal: { AWS: `arn:aws:iam::${accountId}:root` },
        Action: 'kms:*',
        Resource: '*',
      },
    ],
  });
}

export const createKey: OperationHandler<'CreateKey'> = (input, ctx, services) =>
  createKeyWithId(input, ctx, services, input.MultiRegion ? `mrk-${randomBytes(16).toString('hex')}` : randomUUID());

/** CreateKey with a key id chosen by the caller (the seed file's fixed ids); the operation draws a random one. */
export const createKeyWithId = async (input: Parameters<OperationHandler<'CreateKey'>>[0], ctx: Parameters<OperationHandler<'CreateKey'>>[1], services: Parameters<OperationHandler<'CreateKey'>>[2], keyId: string): ReturnType<OperationHandler<'CreateKey'>> => {
  if (input.KeySpec && input.CustomerMasterKeySpec) {
    throw new KmsError('ValidationException', 'You cannot specify KeySpec and CustomerMasterKeySpec in the same request. CustomerMasterKeySpec is deprecated.');
  }
  const keySpec: KeySpec = (input.KeySpec ?? input.CustomerMasterKeySpec ?? 'SYMMETRIC_DEFAULT') as KeySpec;
  const keyUsage = chooseKeyUsage(keySpec, input.KeyUsage);
  const origin = input.Origin ?? 'AWS_KMS';
  const placement = await placementOf(services, ctx, input, keySpec, keyUsage, origin);
  if (!placement && origin !== 'AWS_KMS' && origin !== 'EXTERNAL') {
    throw new KmsError('UnsupportedOperationException', `Origin ${origin} is not supported by p11kms; only AWS_KMS and EXTERNAL keys can be created.`);
  }
  if (origin === 'EXTERNAL' && !IMPORTABLE_SPECS.has(keySpec) && !keySpec.startsWith('HMAC_')) {
    throw new KmsError('UnsupportedOperationException', `p11kms cannot import ${keySpec} key material; Origin EXTERNAL is available for SYMMETRIC_DEFAULT, HMAC, RSA and ECC (NIST P-256/384/521, secp256k1) keys.`);
  }
  if (input.MultiRegion && origin === 'EXTERNAL') {
    throw new KmsError('UnsupportedOperationException', 'p11kms cannot create multi-Region keys with imported key material (Origin EXTERNAL); multi-Region keys are available with Origin AWS_KMS.');
  }
  const capability = services.custody.canGenerate(keySpec);
  if (!capability.ok) {
    throw new KmsError('UnsupportedOperationException', `KeySpec ${keySpec} is not supported by this key store: the token lacks ${capability.missing}.`);
  }
  const tags = validateTags(input.Tags);
  const policy = input.Policy ?? defaultKeyPolicy(ctx.scope.accountId);
  checkAccountAction(services, ctx, 'kms:CreateKey', {
    keySpec,
    keyUsage,
    keyOrigin: origin,
    multiRegion: input.MultiRegion ?? false,
    // The KMS developer guide (multi-Region keys): kms:MultiRegionKeyType "controls access to the
    // CreateKey operation"; a multi-Region key CreateKey makes is a primary key.
    ...(input.MultiRegion ? { multiRegionKeyType: 'PRIMARY' as const } : {}),
    requestTags: tags,
    // Absent when the request leaves it out (AWS: a Null condition tells the two apart).
    bypassPolicyLockoutSafetyCheck: input.BypassPolicyLockoutSafetyCheck,
  });

  const now = services.clock.now();
  const record: KeyRecord = {
    keyId,
    region: ctx.scope.region,
    accountId: ctx.scope.accountId,
    arn: keyArn(ctx.scope, keyId),
    createdAt: now,
    description: input.Description ?? '',
    keySpec,
    keyUsage,
    origin,
    // EXTERNAL keys have no material until ImportKeyMaterial.
    keyState: origin === 'EXTERNAL' ? 'PendingImport' : 'Enabled',
    materials: origin === 'EXTERNAL' ? [] : [{ version: 1, materialId: randomBytes(32).toString('hex'), createdAt: now }],
    currentVersion: origin === 'EXTERNAL' ? 0 : 1,
    tags,
    policy,
    // A multi-Region key starts as its own primary; ReplicateKey adds the other regions.
    ...(input.MultiRegion ? { primaryRegion: ctx.scope.region } : {}),
    ...placement?.fields,
  };
  // The lockout safety check concerns a Policy the caller wrote; AWS's default key policy
  // (account root, kms:*) is attached without it.
  checkKeyPolicy(services, ctx, policy, record, input.Policy === undefined || input.BypassPolicyLockoutSafetyCheck);
  if (origin === 'EXTERNAL') {
    await services.store.transact(async (tx) => {
      if (await tx.getKey(record)) throw new KmsError('AlreadyExistsException', `Key '${record.arn}' already exists`);
      tx.putKey(record);
    });
    return { KeyMetadata: keyMetadataOf(record) };
  }
  // The creation protocol (shared/key-mutation.ts): intent, token object, then the record.
  const custody = placement?.custody ?? services.custody;
  const stored = await createInToken(services, {
    keyId,
    purpose: 'material',
    custody,
    ...(origin === 'AWS_CLOUDHSM' ? { customKeyStoreId: placement?.fields.customKeyStoreId } : {}),
    make: (creationId) => custody.generateKey({ keyId, version: 1, creationId }, keySpec, keyUsage),
    commit: async (tx, _made, creationId) => {
      if (await tx.getKey(record)) throw new KmsError('AlreadyExistsException', `Key '${record.arn}' already exists`);
      // The store may have been deleted while the key was generated: then the key is not recorded (and its object goes).
      if (record.customKeyStoreId && !(await tx.getCustomKeyStore(record.customKeyStoreId))) throw customKeyStoreNotFound(record.customKeyStoreId);
      if (record.customKeyStoreId && record.xksKeyId) checkExternalKeyFree(await tx.keysInCustomKeyStore(record.customKeyStoreId), record.customKeyStoreId, record.xksKeyId);
      const withMaterial: KeyRecord = { ...record, materials: record.materials.map((m) => ({ ...m, creationId })) };
      tx.putKey(withMaterial);
      return { value: withMaterial, keep: true };
    },
  });
  return { KeyMetadata: await describedKey(services, stored) };
};

/** Key usages AWS allows for each key spec. */
const USAGES_BY_SPEC: Record<KeySpec, readonly KeyUsageType[]> = {
  SYMMETRIC_DEFAULT: ['ENCRYPT_DECRYPT'],
  RSA_2048: ['ENCRYPT_DECRYPT', 'SIGN_VERIFY'],
  RSA_3072: ['ENCRYPT_DECRYPT', 'SIGN_VERIFY'],
  RSA_4096: ['ENCRYPT_DECRYPT', 'SIGN_VERIFY'],
  ECC_NIST_P256: ['SIGN_VERIFY', 'KEY_AGREEMENT'],
  ECC_NIST_P384: ['SIGN_VERIFY', 'KEY_AGREEMENT'],
  ECC_NIST_P521: ['SIGN_VERIFY', 'KEY_AGREEMENT'],
  // Key agreement is for the NIST-standard curves (and SM2) only (the model's CreateKey KeyUsage).
  ECC_SECG_P256K1: ['SIGN_VERIFY'],
  ECC_NIST_EDWARDS25519: ['SIGN_VERIFY'],
  HMAC_224: ['GENERATE_VERIFY_MAC'],
  HMAC_256: ['GENERATE_VERIFY_MAC'],
  HMAC_384: ['GENERATE_VERIFY_MAC'],
  HMAC_512: ['GENERATE_VERIFY_MAC'],
  SM2: ['ENCRYPT_DECRYPT', 'SIGN_VERIFY', 'KEY_AGREEMENT'],
  ML_DSA_44: ['SIGN_VERIFY'],
  ML_DSA_65: ['SIGN_VERIFY'],
  ML_DSA_87: ['SIGN_VERIFY'],
};

function chooseKeyUsage(keySpec: KeySpec, requested: KeyUsageType | undefined): KeyUsageType {
  if (!requested) {
    if (keySpec === 'SYMMETRIC_DEFAULT') return 'ENCRYPT_DECRYPT';
    throw new KmsError('ValidationException', 'You must specify a KeyUsage value for all KMS keys except for symmetric encryption keys.');
  }
  if (!USAGES_BY_SPEC[keySpec].includes(requested)) {
    throw new KmsError('ValidationException', `KeyUsage ${requested} is not compatible with KeySpec ${keySpec}`);
  }
  return requested;
}
