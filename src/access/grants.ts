import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import { KmsError } from '../errors';
import type { GrantOperation, KeySpec, KeyUsageType } from '../model/generated/types';
import type { GrantConstraintsRecord, GrantRecord } from '../store/grant-record';
import type { RequestConditions } from './condition-keys';
import type { Caller } from './principal';
import { principalNamesCaller } from './principal-matching';

/**
 * Grant rules as AWS KMS applies them: which operations a grant may allow for a key of a
 * given spec and usage, how encryption-context constraints restrict them, and whether a
 * grant allows one request.
 */

const ALWAYS: readonly GrantOperation[] = ['CreateGrant', 'DescribeKey', 'RetireGrant'];

/**
 * Operations that take an encryption context: the only ones grant constraints apply to, and
 * (with ALWAYS) exactly what a symmetric encryption key can grant.
 */
const WITH_ENCRYPTION_CONTEXT: readonly GrantOperation[] = [
  'Encrypt',
  'Decrypt',
  'GenerateDataKey',
  'GenerateDataKeyWithoutPlaintext',
  'GenerateDataKeyPair',
  'GenerateDataKeyPairWithoutPlaintext',
  'ReEncryptFrom',
  'ReEncryptTo',
];

/** The grant operations AWS accepts for a key of this spec and usage. */
export function grantableOperations(keySpec: KeySpec, keyUsage: KeyUsageType): readonly GrantOperation[] {
  if (keySpec === 'SYMMETRIC_DEFAULT') return [...ALWAYS, ...WITH_ENCRYPTION_CONTEXT];
  switch (keyUsage) {
    case 'ENCRYPT_DECRYPT':
      return [...ALWAYS, 'Encrypt', 'Decrypt', 'ReEncryptFrom', 'ReEncryptTo', 'GetPublicKey'];
    case 'SIGN_VERIFY':
      return [...ALWAYS, 'Sign', 'Verify', 'GetPublicKey'];
    case 'GENERATE_VERIFY_MAC':
      return [...ALWAYS, 'GenerateMac', 'VerifyMac'];
    case 'KEY_AGREEMENT':
      return [...ALWAYS, 'DeriveSharedSecret', 'GetPublicKey'];
    default:
      return ALWAYS;
  }
}

/**
 * A grant has at most one constraint. As AWS answers (aws/aws-sdk-java#328, and the comment of
 * terraform-provider-aws's aws_kms_grant): both members given is "More than one constraint
 * supplied", even when one of them is an empty map, so this looks at the request as sent.
 */
export function checkSingleConstraint(requested: { EncryptionContextEquals?: unknown; EncryptionContextSubset?: unknown } | undefined): void {
  if (requested?.EncryptionContextEquals !== undefined && requested.EncryptionContextSubset !== undefined) {
    throw new KmsError('ValidationException', 'More than one constraint supplied');
  }
}

/** CreateGrant's checks of Operations and Constraints against the key (ValidationException). */
export function checkGrantRequest(
  key: { arn: string; keySpec: KeySpec; keyUsage: KeyUsageType },
  operations: readonly GrantOperation[],
  constraints: GrantConstraintsRecord | undefined,
): void {
  if (operations.length === 0) {
    throw new KmsError('ValidationException', '1 validation error detected: Value \'[]\' at \'operations\' failed to satisfy constraint: Member must have length greater than or equal to 1');
  }
  const allowed = grantableOperations(key.keySpec, key.keyUsage);
  const invalid = operations.filter((op) => !allowed.includes(op));
  if (invalid.length > 0) {
    throw new KmsError(
      'ValidationException',
      `Grant operations ${invalid.join(', ')} are not valid for ${key.arn}, whose KeySpec is ${key.keySpec} and KeyUsage ${key.keyUsage}.`,
    );
  }
  if ((constraints?.encryptionContextEquals || constraints?.encryptionContextSubset) && key.keySpec !== 'SYMMETRIC_DEFAULT') {
    throw new KmsError(
      'ValidationException',
      `Grant constraints are not supported for ${key.arn}: encryption context constraints apply to symmetric encryption KMS keys only.`,
    );
  }
}

/** Does `grant` allow `caller` to do `action` (kms:<Operation>) with this request? */
export function grantAllows(grant: GrantRecord, caller: Caller, action: string, request: RequestConditions): boolean {
  if (!action.startsWith('kms:')) return false;
  const operation = action.slice(4);
  if (!grant.operations.includes(operation as GrantOperation)) return false;
  if (!principalNamesCaller(grant.granteePrincipal, caller)) return false;
  if (!WITH_ENCRYPTION_CONTEXT.includes(operation as GrantOperation)) return true;
  return constraintsHold(grant.constraints, request.encryptionContext ?? {});
}

/**
 * EncryptionContextEquals: exactly these pairs; EncryptionContextSubset: at least these pairs.
 * As AWS: in a grant constraint the key of each pair is not case sensitive, the value is.
 */
export function constraintsHold(constraints: GrantConstraintsRecord | undefined, context: Readonly<Record<string, string>>): boolean {
  if (!constraints) return true;
  if (constraints.encryptionContextEquals) return contextEquals(constraints.encryptionContextEquals, context);
  if (constraints.encryptionContextSubset) return contextIncludes(context, constraints.encryptionContextSubset);
  return true;
}

/** Does `context` hold every pair of `pairs` (keys compared case-insensitively, values exactly)? */
function contextIncludes(context: Readonly<Record<string, string>>, pairs: Readonly<Record<string, string>>): boolean {
  const values = new Map<string, string[]>();
  for (const [k, v] of Object.entries(context)) values.set(k.toLowerCase(), [...(values.get(k.toLowerCase()) ?? []), v]);
  return Object.entries(pairs).every(([k, v]) => values.get(k.toLowerCase())?.includes(v) === true);
}

/**
 * The same pairs, exactly (keys too case-sensitive), in any order: whether two CreateGrant
 * requests name the same constraint. Absent and absent are the same.
 */
export function sameEncryptionContext(a: Readonly<Record<string, string>> | undefined, b: Readonly<Record<string, string>> | undefined): boolean {
  if (a === undefined || b === undefined) return a === b;
  const keys = Object.keys(a);
  return keys.length === Object.keys(b).length && keys.every((k) => Object.prototype.hasOwnProperty.call(b, k) && a[k] === b[k]);
}

function contextEquals(a: Readonly<Record<string, string>>, b: Readonly<Record<string, string>>): boolean {
  return Object.keys(a).length === Object.keys(b).length && contextIncludes(a, b) && contextIncludes(b, a);
}

/**
 * A grantee that creates a grant through its own grant (the CreateGrant grant operation)
 * may pass on only operations it holds, under constraints at least as strict as its own.
 */
export function grantMayDelegate(
  parent: GrantRecord,
  operations: readonly GrantOperation[],
  constraints: GrantConstraintsRecord | undefined,
): boolean {
  if (!operations.every((op) => parent.operations.includes(op))) return false;
  const own = parent.constraints;
  if (!own || (!own.encryptionContextEquals && !own.encryptionContextSubset)) return true;
  if (own.encryptionContextEquals) {
    return constraints?.encryptionContextEquals !== undefined && contextEquals(constraints.encryptionContextEquals, own.encryptionContextEquals);
  }
  const given = constraints?.encryptionContextEquals ?? constraints?.encryptionContextSubset;
  return given !== undefined && contextIncludes(given, own.encryptionContextSubset!);
}

/** A fresh grant id: 64 hex characters, as AWS. */
export function newGrantId(): string {
  return randomBytes(32).toString('hex');
}

/** An opaque grant token naming its grant: base64url of the grant id and 32 random bytes. */
export function newGrantToken(grantId: string): string {
  return Buffer.concat([Buffer.from(grantId, 'hex'), randomBytes(32)]).toString('base64url');
}

/**
 * A further token for an existing grant (CreateGrant repeated with the same Name): AWS hands
 * out a new token on every CreateGrant, all usable interchangeably. It is the grant id, a
 * nonce and a digest of the grant's stored token and the nonce, so the store keeps one token.
 */
export function anotherGrantToken(grant: GrantRecord): string {
  const nonce = randomBytes(16);
  return Buffer.concat([Buffer.from(grant.grantId, 'hex'), nonce, tokenDigest(grant, nonce)]).toString('base64url');
}

/** Is `token` one of the tokens CreateGrant handed out for `grant`? */
export function tokenNamesGrant(token: string, grant: GrantRecord): boolean {
  if (token === grant.grantToken) return true;
  if (grantIdOfToken(token) !== grant.grantId) return false;
  const bytes = Buffer.from(token, 'base64url');
  return timingSafeEqual(bytes.subarray(48), tokenDigest(grant, bytes.subarray(32, 48)));
}

function tokenDigest(grant: GrantRecord, nonce: Buffer): Buffer {
  return createHash('sha256').update(grant.grantToken).update(nonce).digest().subarray(0, 16);
}

/** The grant id a token names; InvalidGrantTokenException when it is not a p11kms grant token. */
export function grantIdOfToken(token: string): string {
  const bytes = /^[A-Za-z0-9_-]{86}$/.test(token) ? Buffer.from(token, 'base64url') : Buffer.alloc(0);
  if (bytes.length !== 64) throw new KmsError('InvalidGrantTokenException', 'The grant token is not valid.');
  return bytes.subarray(0, 32).toString('hex');
}
