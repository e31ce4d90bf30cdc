import { AWS_PRINCIPAL } from '../../access/policy-document';
import { KmsError } from '../../errors';
import type { GrantConstraints, GrantListEntry } from '../../model/generated/types';
import type { GrantConstraintsRecord, GrantRecord } from '../../store/grant-record';
import { keyArn, type KeyRecord } from '../../store/records';
import type { Services } from '../context';
import { listOrder } from './pagination';

/** ListGrants and ListRetirableGrants list oldest first, grant id breaking ties. */
export const GRANTS_BY_CREATION = listOrder(['number', 'string'], (g: GrantRecord) => [g.createdAt, g.grantId]);

/** ListGrants / ListRetirableGrants entry, as AWS returns it. */
export function grantEntryOf(grant: GrantRecord): GrantListEntry {
  const entry: GrantListEntry = {
    KeyId: keyArn({ region: grant.region, accountId: grant.accountId }, grant.keyId),
    GrantId: grant.grantId,
    Name: grant.name ?? '',
    CreationDate: new Date(grant.createdAt),
    GranteePrincipal: grant.granteePrincipal,
    IssuingAccount: grant.issuingAccount,
    Operations: [...grant.operations],
  };
  if (grant.retiringPrincipal !== undefined) entry.RetiringPrincipal = grant.retiringPrincipal;
  if (grant.constraints) entry.Constraints = constraintsOut(grant.constraints);
  return entry;
}

export function constraintsIn(constraints: GrantConstraints | undefined): GrantConstraintsRecord | undefined {
  if (!constraints) return undefined;
  const out: { encryptionContextEquals?: Record<string, string>; encryptionContextSubset?: Record<string, string> } = {};
  if (constraints.EncryptionContextEquals) out.encryptionContextEquals = { ...constraints.EncryptionContextEquals };
  if (constraints.EncryptionContextSubset) out.encryptionContextSubset = { ...constraints.EncryptionContextSubset };
  return out.encryptionContextEquals || out.encryptionContextSubset ? out : undefined;
}

function constraintsOut(constraints: GrantConstraintsRecord): GrantConstraints {
  const out: GrantConstraints = {};
  if (constraints.encryptionContextEquals) out.EncryptionContextEquals = { ...constraints.encryptionContextEquals };
  if (constraints.encryptionContextSubset) out.EncryptionContextSubset = { ...constraints.encryptionContextSubset };
  return out;
}

/**
 * A grantee or retiring principal: an AWS principal ARN (in strict mode, one the credentials
 * file knows). A well-formed ARN of a principal that does not exist is InvalidArnException, as
 * AWS answers for an IAM role not (yet) known to KMS (terraform-provider-aws retries CreateGrant
 * on it for that reason: aws_kms_grant, pull request #3038).
 */
export function checkGrantPrincipal(services: Services, principal: string, member: string): void {
  const directory = services.access?.enforce ? services.access.directory : undefined;
  const message = `${member} ${principal} is not a valid principal.`;
  if (!AWS_PRINCIPAL.test(principal) || /^\d{12}$/.test(principal)) throw new KmsError('ValidationException', message);
  if (directory && !directory.principalExists(principal)) throw new KmsError('InvalidArnException', message);
}

/** A grant id as AWS makes them: 64 hex characters. */
export function checkGrantId(grantId: string): void {
  if (!/^[0-9a-f]{64}$/.test(grantId)) throw new KmsError('InvalidGrantIdException', `Invalid grant ID: ${grantId}`);
}

/**
 * Whether `grant` is a grant on `key`. Grants are regional, as their keys: the regions of a
 * multi-Region key share its key id, so the id alone would let a call in one region reach the
 * grants of another region's key.
 */
export function isGrantOn(grant: GrantRecord, key: KeyRecord): boolean {
  return grant.keyId === key.keyId && grant.region === key.region && grant.accountId === key.accountId;
}

export function grantNotFound(grantId: string): KmsError {
  return new KmsError('NotFoundException', `Grant ID ${grantId} not found`);
}
