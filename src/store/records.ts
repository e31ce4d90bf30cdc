import type { KeySpec, KeyState, KeyUsageType, OriginType } from '../model/generated/types';

/** Where a key or alias lives: keys and aliases are regional and per account, as on AWS. */
export interface Scope {
  region: string;
  accountId: string;
}

/** One version of a key's material: a token object plus the id AWS reports for it. */
export interface KeyMaterialRecord {
  version: number;
  /** 64 hex characters, reported as KeyMaterialId / CurrentKeyMaterialId. */
  materialId: string;
  createdAt: number;
  /** How this version replaced the previous one (absent for a key's first material). */
  rotationType?: 'AUTOMATIC' | 'ON_DEMAND';
  /** When the rotation that made this version current completed (absent for the first material). */
  rotatedAt?: number;
  /** Imported material (Origin EXTERNAL) only: */
  imported?: ImportedMaterialRecord;
}

/** What p11kms remembers about imported key material; never the material itself. */
export interface ImportedMaterialRecord {
  /** IMPORTED: the token holds it; PENDING_IMPORT: deleted or expired, re-import the same material. */
  importState: 'IMPORTED' | 'PENDING_IMPORT';
  expirationModel: 'KEY_MATERIAL_EXPIRES' | 'KEY_MATERIAL_DOES_NOT_EXPIRE';
  validTo?: number;
  description?: string;
  /**
   * Key check value computed by the token under the imported key (AES-ECB of a zero block,
   * or HMAC of a fixed message), hex. Re-imports must produce the same value.
   */
  checkValue: string;
}

/** Automatic rotation settings of a symmetric key (absent: never enabled). */
export interface RotationRecord {
  enabled: boolean;
  periodInDays: number;
  /** When the next automatic rotation is due (enabled keys only). */
  nextRotationAt?: number;
  /** On-demand rotations performed so far (AWS allows 25 per key). */
  onDemandCount: number;
}

/** A wrapping key pair in the token, made by GetParametersForImport. */
export interface ImportParametersRecord {
  /** Names the token objects (`p11kms-import:<key id>:<wrapping id>`) and the import token. */
  wrappingId: string;
  wrappingKeySpec: 'RSA_2048' | 'RSA_3072' | 'RSA_4096';
  wrappingAlgorithm: 'RSAES_PKCS1_V1_5' | 'RSAES_OAEP_SHA_1' | 'RSAES_OAEP_SHA_256' | 'RSA_AES_KEY_WRAP_SHA_1' | 'RSA_AES_KEY_WRAP_SHA_256';
  /** SHA-256 of the import token handed out (the token itself is not stored). */
  tokenHash: string;
  validTo: number;
}

/** The last successful cryptographic use of a key (GetKeyLastUsage). */
export interface LastUsageRecord {
  operation: string;
  at: number;
  requestId: string;
}

export interface TagRecord {
  TagKey: string;
  TagValue: string;
}

/**
 * Everything p11kms knows about a key except its material, which stays in the token.
 * Records are immutable: a change writes a new record (the JSON store relies on this to
 * share unchanged records between snapshots).
 */
export interface KeyRecord {
  readonly keyId: string;
  readonly region: string;
  readonly accountId: string;
  readonly arn: string;
  readonly createdAt: number;
  readonly description: string;
  readonly keySpec: KeySpec;
  readonly keyUsage: KeyUsageType;
  readonly origin: OriginType;
  readonly keyState: KeyState;
  readonly deletionDate?: number;
  readonly pendingWindowInDays?: number;
  readonly materials: readonly KeyMaterialRecord[];
  readonly currentVersion: number;
  readonly tags: readonly TagRecord[];
  readonly policy: string;
  readonly rotation?: RotationRecord;
  /** Origin EXTERNAL: wrapping keys handed out and not yet expired. */
  readonly importParameters?: readonly ImportParametersRecord[];
  /** Flushed from memory periodically, so it can lag by a few seconds (see docs/key-custody.md). */
  readonly lastUsage?: LastUsageRecord;
}

export interface AliasRecord {
  readonly region: string;
  readonly accountId: string;
  readonly aliasName: string;
  readonly targetKeyId: string;
  readonly createdAt: number;
  readonly updatedAt: number;
}

export function keyArn(scope: Scope, keyId: string): string {
  return `arn:aws:kms:${scope.region}:${scope.accountId}:key/${keyId}`;
}

export function aliasArn(scope: Scope, aliasName: string): string {
  return `arn:aws:kms:${scope.region}:${scope.accountId}:${aliasName}`;
}
