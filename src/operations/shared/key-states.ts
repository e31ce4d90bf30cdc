import { KmsError } from '../../errors';
import type { KeyState } from '../../model/generated/types';
import type { KeyRecord } from '../../store/records';

/**
 * The key states an operation accepts, as AWS's table "How key states affect operations"
 * (Key states of AWS KMS keys, developer guide) groups them:
 * - `use`: cryptographic operations, GetPublicKey, ReplicateKey, UpdatePrimaryRegion and
 *   the rotation changes: Enabled only.
 * - `grant`: CreateGrant: like `use`, but a key whose custom key store is disconnected
 *   (Unavailable) still takes grants.
 * - `manage`: TagResource, UntagResource, UpdateKeyDescription, ScheduleKeyDeletion, the
 *   target of CreateAlias and UpdateAlias, GetParametersForImport, ImportKeyMaterial: every
 *   state but pending (replica) deletion.
 * - `toggle`: EnableKey, DisableKey: also not while pending import.
 * - `pendingDeletion`: CancelKeyDeletion: only while pending (replica) deletion.
 * - `any`: DescribeKey, the key policy, grant, tag and alias listings, RetireGrant,
 *   RevokeGrant, DeleteImportedKeyMaterial, GetKeyLastUsage, ….
 */
export type KeyStateRule = 'use' | 'grant' | 'manage' | 'toggle' | 'pendingDeletion' | 'any';

const ALL: readonly KeyState[] = ['Enabled', 'Disabled', 'PendingDeletion', 'PendingReplicaDeletion', 'PendingImport', 'Unavailable', 'Creating', 'Updating'];
const MANAGEABLE = ALL.filter((s) => s !== 'PendingDeletion' && s !== 'PendingReplicaDeletion');

const ACCEPTED: Record<KeyStateRule, readonly KeyState[]> = {
  use: ['Enabled'],
  grant: ['Enabled', 'Unavailable'],
  manage: MANAGEABLE,
  toggle: ['Enabled', 'Disabled', 'Unavailable'],
  pendingDeletion: ['PendingDeletion', 'PendingReplicaDeletion'],
  any: ALL,
};

const PHRASE: Record<KeyState, string> = {
  PendingDeletion: 'is pending deletion',
  PendingImport: 'is pending import',
  Disabled: 'is disabled',
  Enabled: 'is enabled',
  Unavailable: 'is unavailable',
  Creating: 'is being created',
  PendingReplicaDeletion: 'is pending replica deletion',
  Updating: 'is updating',
};

/**
 * Refuses `key` for an operation of `rule` with AWS's exception and text (footnotes of the
 * table): DisabledException for a disabled key, `is not pending deletion.` for
 * CancelKeyDeletion, KMSInvalidStateException naming the state otherwise. `state` is the
 * state clients see (Unavailable for a key of a disconnected custom key store).
 */
export function requireKeyState(key: KeyRecord, rule: KeyStateRule, state: KeyState = key.keyState): void {
  if (ACCEPTED[rule].includes(state)) return;
  if (rule === 'pendingDeletion') throw new KmsError('KMSInvalidStateException', `${key.arn} is not pending deletion.`);
  if (state === 'Disabled') throw new KmsError('DisabledException', `${key.arn} is disabled.`);
  throw invalidState({ ...key, keyState: state });
}

/** KMSInvalidStateException with AWS's wording for the key's current state. */
function invalidState(key: KeyRecord): KmsError {
  return new KmsError('KMSInvalidStateException', `${key.arn} ${PHRASE[key.keyState] ?? `is ${key.keyState}`}.`, { keyState: key.keyState });
}
