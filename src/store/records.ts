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
