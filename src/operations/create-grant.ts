import { authorizeGrantDelegation } from '../access/authorize';
import { anotherGrantToken, checkGrantRequest, checkSingleConstraint, newGrantId, newGrantToken, sameEncryptionContext } from '../access/grants';
import { KmsError } from '../errors';
import type { GrantRecord } from '../store/grant-record';
import type { OperationHandler } from './context';
import { stopIfDryRun } from './shared/checks';
import { checkGrantPrincipal, constraintsIn } from './shared/grant-entries';
import { effectiveKeyState } from './shared/custom-key-stores';
import { loadKeyWithGrant } from './shared/key-resolution';
import { requireKeyState } from './shared/key-states';

export const createGrant: OperationHandler<'CreateGrant'> = async (input, ctx, services) => {
  const constraints = constraintsIn(input.Constraints);
  const operations = input.Operations ?? [];
  const { key, grant: viaGrant } = await loadKeyWithGrant(services, ctx, input.KeyId, {
    operation: 'CreateGrant',
    states: 'grant',
    conditions: {
      grantIsForAWSResource: false,
      grantOperations: operations,
      granteePrincipal: input.GranteePrincipal,
      retiringPrincipal: input.RetiringPrincipal,
      // kms:EncryptionContext:<key> / kms:EncryptionContextKeys: the KMS developer guide lists CreateGrant
      // among their operations; the encryption context a CreateGrant request carries is its constraint's.
      encryptionContext: input.Constraints?.EncryptionContextEquals ?? input.Constraints?.EncryptionContextSubset,
      grantConstraintType: [
        ...(input.Constraints?.EncryptionContextEquals ? ['EncryptionContextEquals'] : []),
        ...(input.Constraints?.EncryptionContextSubset ? ['EncryptionContextSubset'] : []),
      ],
    },
  });
  checkGrantPrincipal(services, input.GranteePrincipal, 'GranteePrincipal');
  if (input.RetiringPrincipal !== undefined) checkGrantPrincipal(services, input.RetiringPrincipal, 'RetiringPrincipal');
  checkSingleConstraint(input.Constraints);
  checkGrantRequest(key, operations, constraints);
  authorizeGrantDelegation(ctx.caller, key, viaGrant, operations, constraints);
  stopIfDryRun(input.DryRun);

  const grantId = newGrantId();
  const record: GrantRecord = {
    grantId,
    keyId: key.keyId,
    accountId: key.accountId,
    region: key.region,
    ...(input.Name !== undefined ? { name: input.Name } : {}),
    createdAt: services.clock.now(),
    granteePrincipal: input.GranteePrincipal,
    ...(input.RetiringPrincipal !== undefined ? { retiringPrincipal: input.RetiringPrincipal } : {}),
    issuingAccount: `arn:aws:iam::${ctx.caller.accountId}:root`,
    operations: [...new Set(operations)].sort(),
    ...(constraints ? { constraints } : {}),
    grantToken: newGrantToken(grantId),
  };
  const stored = await services.store.transact(async (tx) => {
    const current = await tx.getKey(key);
    if (!current) throw new KmsError('NotFoundException', `Key '${key.arn}' does not exist`);
    requireKeyState(current, 'grant', effectiveKeyState(services, current));
    // Name idempotency: the same request with the same Name answers the grant made before.
    // Its token is a new one (AWS: a unique token on every CreateGrant, all interchangeable).
    const grants = await tx.listGrants(key);
    if (record.name !== undefined) {
      const same = grants.find((g) => sameGrant(g, record));
      if (same) return { grantId: same.grantId, grantToken: anotherGrantToken(same) };
    }
    // AWS's resource quota "Grants per KMS key": retired and revoked grants are gone, so they count no more.
    if (services.grantsPerKey !== undefined && grants.length >= services.grantsPerKey) {
      throw new KmsError('LimitExceededException', `${key.arn} has ${grants.length} grants; the quota is ${services.grantsPerKey} grants per KMS key. Retire or revoke grants first.`);
    }
    tx.putGrant(record);
    return record;
  });
  return { GrantId: stored.grantId, GrantToken: stored.grantToken };
};

function sameGrant(a: GrantRecord, b: GrantRecord): boolean {
  return (
    a.name === b.name &&
    a.granteePrincipal === b.granteePrincipal &&
    a.retiringPrincipal === b.retiringPrincipal &&
    a.issuingAccount === b.issuingAccount &&
    JSON.stringify(a.operations) === JSON.stringify(b.operations) &&
    sameConstraints(a.constraints, b.constraints)
  );
}

/** Encryption contexts are maps: the order a client happened to send their pairs in is no parameter. */
function sameConstraints(a: GrantRecord['constraints'], b: GrantRecord['constraints']): boolean {
  return (
    sameEncryptionContext(a?.encryptionContextEquals, b?.encryptionContextEquals) &&
    sameEncryptionContext(a?.encryptionContextSubset, b?.encryptionContextSubset)
  );
}
