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
  /**
   * The token object(s) holding this version: the creation id written into their CKA_ID
   * (docs/key-custody.md, "Creation ids"). Absent on material made before creation ids
   * existed (found by label then) and on imported material that is PENDING_IMPORT.
   */
  creationId?: string;
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
  /**
   * The key was Disabled when its imported material was deleted or expired: once the
   * material is imported again it returns to Disabled, not Enabled, as on AWS.
   */
  readonly disabledBeforePendingImport?: boolean;
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
  /**
   * Multi-Region keys only (`mrk-` ids): the region of the primary key. Every region of the
   * key has its own record under the same key id; see MULTI_REGION_SHARED_FIELDS.
   */
  readonly primaryRegion?: string;
  /** The custom key store holding the key (Origin AWS_CLOUDHSM or EXTERNAL_KEY_STORE). */
  readonly customKeyStoreId?: string;
  /** Origin EXTERNAL_KEY_STORE: the external key's id at the XKS proxy. */
  readonly xksKeyId?: string;
}

/**
 * What the records of one multi-Region key (primary and replicas) share, as AWS synchronises
 * it: the key material (the same token objects: a replica has no material of its own), its
 * versions and rotation, key spec, usage and origin, and which region is primary. The store
 * copies these fields to every record of the key whenever one record is written, so no
 * operation can update one region and forget the others.
 */
export const MULTI_REGION_SHARED_FIELDS = ['keySpec', 'keyUsage', 'origin', 'materials', 'currentVersion', 'rotation', 'primaryRegion'] as const;

export function isMultiRegion(key: Pick<KeyRecord, 'primaryRegion'>): boolean {
  return key.primaryRegion !== undefined;
}

export function isReplica(key: Pick<KeyRecord, 'primaryRegion' | 'region'>): boolean {
  return key.primaryRegion !== undefined && key.primaryRegion !== key.region;
}

/** `sibling` with the multi-Region shared fields of `source`. */
export function withSharedFields(sibling: KeyRecord, source: KeyRecord): KeyRecord {
  const next: Record<string, unknown> = { ...sibling };
  for (const field of MULTI_REGION_SHARED_FIELDS) {
    if (source[field] === undefined) delete next[field];
    else next[field] = source[field];
  }
  return next as unknown as KeyRecord;
}

/**
 * A custom key store. Secrets (the backend token's PIN, the XKS proxy's SigV4 secret) are
 * kept only sealed by the main token (AES-GCM under a token key, bound to the store id).
 */
export interface CustomKeyStoreRecord {
  readonly customKeyStoreId: string;
  readonly region: string;
  readonly accountId: string;
  readonly name: string;
  readonly type: 'AWS_CLOUDHSM' | 'EXTERNAL_KEY_STORE';
  readonly createdAt: number;
  /** Connect was asked for and no Disconnect since: every process connects it (and at start-up). */
  readonly connectRequested: boolean;
  /**
   * Counts the changes of connectRequested (absent: 0), so a process can tell a newer Connect
   * or Disconnect from a record it read earlier, and a Disconnect and Connect it heard of only
   * afterwards from no change at all.
   */
  readonly connectGeneration?: number;
  /** AWS_CLOUDHSM: the configured token backend (tokenBackends) and the sealed user PIN. */
  readonly cloudHsmClusterId?: string;
  readonly trustAnchorCertificate?: string;
  readonly sealedPassword?: string;
  /** EXTERNAL_KEY_STORE: the proxy and its sealed SigV4 secret. */
  readonly xks?: {
    readonly connectivity: 'PUBLIC_ENDPOINT' | 'VPC_ENDPOINT_SERVICE';
    readonly uriEndpoint: string;
    readonly uriPath: string;
    readonly accessKeyId: string;
    readonly sealedSecret: string;
  };
}

/**
 * Token objects in flight, by creation id (docs/key-custody.md, "Custody protocol").
 * - material, wrapping: an object being made. Committed before the token call, removed in
 *   the transaction that records what was made. Reconciliation never destroys an object a
 *   live one names.
 * - removal: objects to be destroyed. Committed in the transaction that stops referring to
 *   them (or that gives up a creation), removed once they are destroyed. Reconciliation
 *   destroys only objects a removal or a dead creation names: an object nothing names (a
 *   store older than the token) is kept and reported, never taken for garbage.
 */
export interface CreationIntent {
  /** The creation id in the objects' CKA_ID; for material made before creation ids, its label. */
  readonly creationId: string;
  readonly keyId: string;
  readonly purpose: 'material' | 'wrapping' | 'removal';
  readonly createdAt: number;
  /** Which process made it (host:pid), for operators reading a stuck intent. */
  readonly owner: string;
  /** removal of material made before creation ids: the objects' label. */
  readonly legacyLabel?: string;
  /** The custom key store whose backend token holds the objects; the main token otherwise. */
  readonly customKeyStoreId?: string;
  /**
   * With customKeyStoreId: that store's cluster when the intent was committed. A removal whose
   * store was deleted since (its keys deleted while it was disconnected) is finished by a store
   * on the same token.
   */
  readonly cloudHsmClusterId?: string;
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

/**
 * An audit record kept with the change it describes (docs/audit.md, "Crash behaviour"): the
 * transaction that commits a change commits this too, and it is removed once the record is
 * in the trail. One left behind (the process ended between the two) is written to the trail
 * at the next start-up, unless the trail already holds a record with its id.
 */
export interface AuditOutboxEntry {
  /** The record's eventID. */
  readonly id: string;
  /** The process that committed it (AuditOutbox's process id): a live one still writes it itself. */
  readonly owner: string;
  readonly createdAt: number;
  /** The record as it reads if the request's own record never reaches the trail. */
  readonly event: Readonly<Record<string, unknown>>;
}
