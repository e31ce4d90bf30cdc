import { createHash } from 'node:crypto';
import { materialNaming } from '../../custody/key-custody';
import { KmsError } from '../../errors';
import type { ExpirationModelType, ImportType } from '../../model/generated/types';
import type { ImportedMaterialRecord, KeyMaterialRecord, KeyRecord } from '../../store/records';
import type { Services } from '../context';
import { checkImportTarget } from './import-checks';
import { materialStateAfterImportChange } from './import-state';
import { importParametersFor } from './import-token';
import { createInToken, mutateKey } from './key-mutation';
import { nextVersion, pendingRotationMaterial } from './rotation';

const DAY_MS = 24 * 60 * 60 * 1000;
const MAX_VALID_TO_DAYS = 365;

export interface ImportRequest {
  importToken: Buffer;
  encryptedKeyMaterial: Buffer;
  validTo?: Date;
  expirationModel?: ExpirationModelType;
  importType?: ImportType;
  description?: string;
  keyMaterialId?: string;
}

/**
 * KeyMaterialId of imported material: derived from the key id and the token's key check
 * value, so re-importing the same material yields the same id, as on AWS.
 */
export function importedMaterialId(keyId: string, checkValue: string): string {
  return createHash('sha256').update(`p11kms/key-material-id\0${keyId}\0${checkValue}`).digest('hex');
}

/**
 * ImportKeyMaterial for a key already found and authorised (the operation and the seed file
 * both come here). The token unwraps the material into a session object and computes its key
 * check value; only then is it matched against the key's materials and, if accepted, copied
 * into a token object of its own creation (the creation protocol of key-mutation.ts).
 */
export async function importKeyMaterial(services: Services, key: KeyRecord, request: ImportRequest): Promise<{ key: KeyRecord; keyMaterialId: string }> {
  checkImportTarget(key);
  const now = services.clock.now();
  const expirationModel = request.expirationModel ?? 'KEY_MATERIAL_EXPIRES';
  const validTo = request.validTo?.getTime();
  if (expirationModel === 'KEY_MATERIAL_EXPIRES') {
    if (validTo === undefined) throw new KmsError('ValidationException', 'A validTo date must be set if the ExpirationModel is KEY_MATERIAL_EXPIRES');
    if (validTo <= now) throw new KmsError('ValidationException', 'The validTo date must be in the future.');
    if (validTo > now + MAX_VALID_TO_DAYS * DAY_MS) throw new KmsError('ValidationException', `The validTo date must be no more than ${MAX_VALID_TO_DAYS} days from the current date.`);
  } else if (validTo !== undefined) {
    throw new KmsError('ValidationException', 'A validTo date must not be set if the ExpirationModel is KEY_MATERIAL_DOES_NOT_EXPIRE');
  }
  const symmetric = key.keySpec === 'SYMMETRIC_DEFAULT';
  if (!symmetric && (request.importType !== undefined || request.keyMaterialId !== undefined || request.description !== undefined)) {
    throw new KmsError('ValidationException', 'ImportType, KeyMaterialId and KeyMaterialDescription are valid only for symmetric encryption keys.');
  }
  const importTypeOf = (k: KeyRecord) => request.importType ?? (k.materials.length === 0 ? 'NEW_KEY_MATERIAL' : 'EXISTING_KEY_MATERIAL');
  if (importTypeOf(key) === 'NEW_KEY_MATERIAL' && request.keyMaterialId !== undefined) {
    throw new KmsError('ValidationException', 'You cannot specify a KeyMaterialId when the ImportType is NEW_KEY_MATERIAL.');
  }
  if (importTypeOf(key) === 'NEW_KEY_MATERIAL' && !symmetric && key.materials.length > 0) {
    throw new KmsError('UnsupportedOperationException', `${key.arn} key spec is ${key.keySpec}; only the same key material can be imported again.`);
  }
  const params = importParametersFor(key, request.importToken, now);

  return mutateKey(services, key.keyId, async () => {
    const base = (await services.store.getKey(key)) ?? key;
    let chosen: { version: number; materialId: string; existing?: KeyMaterialRecord } | undefined;
    return createInToken(services, {
      keyId: key.keyId,
      purpose: 'material',
      // Every import makes a token object of its own (its creation id), even for material the
      // key had before: a concurrent DeleteImportedKeyMaterial can then never destroy an
      // object this import is about to record.
      make: (creationId) =>
        services.custody.importer.importMaterial(
          {
            creationId,
            wrapping: { keyId: key.keyId, wrappingId: params.wrappingId },
            algorithm: params.wrappingAlgorithm,
            wrappingKeySpec: params.wrappingKeySpec,
            encrypted: request.encryptedKeyMaterial,
            spec: key.keySpec,
            usage: key.keyUsage,
          },
          (kcv) => {
            chosen = chooseTarget(base, importTypeOf(base), kcv, request.keyMaterialId);
            return materialNaming({ keyId: key.keyId, version: chosen.version, creationId });
          },
        ),
      commit: async (tx, { checkValue }, creationId) => {
        const current = await tx.getKey(key);
        if (!current) throw new KmsError('NotFoundException', `Key '${key.arn}' does not exist`);
        checkImportTarget(current);
        // Re-decide on the freshest record: a concurrent import or deletion may have changed it.
        const again = chooseTarget(current, importTypeOf(current), checkValue, request.keyMaterialId);
        if (again.version !== chosen!.version) throw new KmsError('ConflictException', `${current.arn} changed during the import. Try again.`);
        // The same material may already be in the token (a concurrent import of it won): keep that object.
        const alreadyInToken = again.existing?.imported?.importState === 'IMPORTED';
        const imported: ImportedMaterialRecord = {
          importState: 'IMPORTED',
          expirationModel,
          ...(validTo !== undefined ? { validTo } : {}),
          ...((request.description ?? again.existing?.imported?.description) !== undefined ? { description: request.description ?? again.existing?.imported?.description } : {}),
          checkValue,
        };
        const materials = again.existing
          ? current.materials.map((m) => (m.version === again.version ? { ...m, imported, ...(alreadyInToken ? {} : { creationId }) } : m))
          : [...current.materials, { version: again.version, materialId: again.materialId, createdAt: now, creationId, imported }];
        const currentVersion = current.materials.length === 0 ? again.version : current.currentVersion;
        const next = materialStateAfterImportChange({ ...current, currentVersion }, materials);
        tx.putKey(next);
        return { value: { key: next, keyMaterialId: again.materialId }, keep: !alreadyInToken };
      },
    });
  });
}

function chooseTarget(key: KeyRecord, importType: ImportType, checkValue: string, keyMaterialId: string | undefined): { version: number; materialId: string; existing?: KeyMaterialRecord } {
  const materialId = importedMaterialId(key.keyId, checkValue);
  const same = key.materials.find((m) => m.imported?.checkValue === checkValue);
  if (importType === 'NEW_KEY_MATERIAL') {
    if (key.materials.length > 0) {
      const pending = pendingRotationMaterial(key);
      if (pending) {
        throw new KmsError(
          'KMSInvalidStateException',
          `New key material (id: ${materialId}) cannot be imported into KMS key ${key.keyId}, because another key material (id: ${pending.materialId}) is pending rotation.`,
        );
      }
    }
    if (same) throw new KmsError('IncorrectKeyMaterialException', 'This key material was already imported into this KMS key. Use ImportType EXISTING_KEY_MATERIAL to reimport it.');
    return { version: nextVersion(key), materialId };
  }
  if (!same || (keyMaterialId !== undefined && keyMaterialId !== same.materialId)) {
    throw new KmsError('IncorrectKeyMaterialException', 'The key material does not match the key material previously imported into this KMS key.');
  }
  return { version: same.version, materialId: same.materialId, existing: same };
}
