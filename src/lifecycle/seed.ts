import { constants, createCipheriv, createPublicKey, publicEncrypt, randomBytes } from 'node:crypto';
import { readJsonFile } from '../config/json-file';
import type { KeySpec, KeyUsageType, Tag } from '../model/generated/types';
import type { RequestContext, Services } from '../operations';
import { createAlias } from '../operations/create-alias';
import { createKeyWithId } from '../operations/create-key';
import { getParametersForImport } from '../operations/get-parameters-for-import';
import { importKeyMaterial } from '../operations/import-key-material';
import { updateAlias } from '../operations/update-alias';

/** One key of a seed file (docs/seed-file.md). */
export interface SeedKey {
  keyId: string;
  region?: string;
  accountId?: string;
  description?: string;
  keySpec?: KeySpec;
  keyUsage?: KeyUsageType;
  aliases?: string[];
  tags?: Tag[];
  /** Test rigs only: the key material, hex or base64 (`base64:` prefix). Makes an EXTERNAL key. */
  material?: string;
}

export interface SeedFile {
  defaults?: { region?: string; accountId?: string };
  keys: SeedKey[];
}

const KEY_ID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

/**
 * Creates the seed file's keys, aliases and imported material at start-up, through the same
 * operations clients call (CreateKey with a fixed key id, GetParametersForImport +
 * ImportKeyMaterial, CreateAlias/UpdateAlias). Idempotent: what exists is left as it is;
 * material that is pending import (deleted or expired) is imported again.
 */
export async function seedFromFile(services: Services, file: string, defaultAccountId = '111122223333'): Promise<string[]> {
  const seed = readJsonFile(file) as SeedFile;
  if (!seed || !Array.isArray(seed.keys)) throw new Error(`seed file ${file}: expected {"keys": [...]}`);
  const touched: string[] = [];
  for (const [i, entry] of seed.keys.entries()) {
    if (!KEY_ID.test(entry.keyId ?? '')) throw new Error(`seed file ${file}: keys[${i}].keyId must be a lower-case UUID`);
    const scope = { region: entry.region ?? seed.defaults?.region ?? 'us-east-1', accountId: entry.accountId ?? seed.defaults?.accountId ?? defaultAccountId };
    const ctx: RequestContext = {
      scope,
      caller: { accountId: scope.accountId, principalArn: `arn:aws:iam::${scope.accountId}:root`, accessKeyId: 'p11kms-seed' },
      requestId: `seed-${entry.keyId}`,
    };
    try {
      await seedKey(services, ctx, entry);
    } catch (err) {
      throw new Error(`seed file ${file}: keys[${i}] (${entry.keyId}): ${(err as Error).name}: ${(err as Error).message}`);
    }
    touched.push(entry.keyId);
  }
  services.log.info({ file, keys: touched.length }, 'seed file applied');
  return touched;
}

async function seedKey(services: Services, ctx: RequestContext, entry: SeedKey): Promise<void> {
  let [key] = await services.store.listKeyRegions(entry.keyId);
  if (key && (key.region !== ctx.scope.region || key.accountId !== ctx.scope.accountId)) {
    throw new Error(`key exists in ${key.region}/${key.accountId}, not ${ctx.scope.region}/${ctx.scope.accountId}`);
  }
  if (!key) {
    await createKeyWithId(
      {
        KeySpec: entry.keySpec,
        KeyUsage: entry.keyUsage,
        Description: entry.description,
        Tags: entry.tags,
        Origin: entry.material !== undefined ? 'EXTERNAL' : 'AWS_KMS',
      },
      ctx,
      services,
      entry.keyId,
    );
    key = (await services.store.getKey({ keyId: entry.keyId, region: ctx.scope.region }))!;
  }
  if (entry.material !== undefined && key.origin === 'EXTERNAL') {
    const current = key.materials.find((m) => m.version === key!.currentVersion);
    if (current?.imported?.importState !== 'IMPORTED') {
      const material = entry.material.startsWith('base64:') ? Buffer.from(entry.material.slice(7), 'base64') : Buffer.from(entry.material, 'hex');
      try {
        // RSA_AES_KEY_WRAP_SHA_1 stays entirely inside SoftHSM2 2.6.1 (docs/key-custody.md).
        const params = await getParametersForImport({ KeyId: entry.keyId, WrappingAlgorithm: 'RSA_AES_KEY_WRAP_SHA_1', WrappingKeySpec: 'RSA_2048' }, ctx, services);
        await importKeyMaterial(
          {
            KeyId: entry.keyId,
            ImportToken: params.ImportToken!,
            EncryptedKeyMaterial: rsaAesKeyWrap(params.PublicKey!, material),
            ExpirationModel: 'KEY_MATERIAL_DOES_NOT_EXPIRE',
          },
          ctx,
          services,
        );
      } finally {
        material.fill(0);
      }
    }
  }
  for (const aliasName of entry.aliases ?? []) {
    const alias = await services.store.getAlias(ctx.scope, aliasName);
    if (!alias) await createAlias({ AliasName: aliasName, TargetKeyId: entry.keyId }, ctx, services);
    else if (alias.targetKeyId !== entry.keyId) await updateAlias({ AliasName: aliasName, TargetKeyId: entry.keyId }, ctx, services);
  }
}

/** RSA_AES_KEY_WRAP_SHA_1 as a client does it: RSA-OAEP-SHA1(ephemeral AES key) ‖ AES-KWP(material). */
function rsaAesKeyWrap(spki: Uint8Array, material: Buffer): Buffer {
  const aesKey = randomBytes(32);
  try {
    const wrappedKey = publicEncrypt({ key: createPublicKey({ key: Buffer.from(spki), format: 'der', type: 'spki' }), padding: constants.RSA_PKCS1_OAEP_PADDING, oaepHash: 'sha1' }, aesKey);
    const cipher = createCipheriv('id-aes256-wrap-pad', aesKey, Buffer.from('A65959A6', 'hex'));
    return Buffer.concat([wrappedKey, cipher.update(material), cipher.final()]);
  } finally {
    aesKey.fill(0);
  }
}
