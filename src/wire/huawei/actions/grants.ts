import type { GrantListEntry, OperationShapes } from '../../../model/generated/types';
import type { RequestContext } from '../../../operations';
import { hasOwnKey, ownValue } from '../../own-properties';
import { invalid } from '../errors';
import { GRANT_OPERATIONS, huaweiOperationsOf } from '../grant-operations';
import { type Action, type Body, call, keyIdOf, keyRef, text, whole } from './shared';

// ---------------------------------------------------------------------------------------------
// Grants (OTC kms_02_0028 create-grant, kms_02_0029 revoke-grant, kms_02_0030 retire-grant,
// kms_02_0031 list-grants, kms_02_0032 list-retirable-grants).

/** grantee_principal / retiring_principal: a user or domain (account) ID, ^[a-zA-Z0-9]{1,64}$. */
const HUAWEI_PRINCIPAL = /^[a-zA-Z0-9]{1,64}$/;

/**
 * A Huawei principal as the AWS principal ARN grants hold: a domain is an account (its root),
 * a user is the IAM user of that name in the project's account.
 */
function principalArn(id: string, type: string, accountId: string): string {
  return type === 'domain' ? `arn:aws:iam::${id}:root` : `arn:aws:iam::${accountId}:user/${id}`;
}

/** The reverse of principalArn; other principals (roles, other accounts' users) are shown as their ARN. */
function huaweiPrincipal(arn: string, accountId: string): { id: string; type: 'user' | 'domain' } {
  const root = /^arn:aws:iam::(\d{12}):root$/.exec(arn);
  if (root) return { id: root[1], type: 'domain' };
  const user = /^arn:aws:iam::(\d{12}):user\/([a-zA-Z0-9]{1,64})$/.exec(arn);
  if (user && user[1] === accountId) return { id: user[2], type: 'user' };
  return { id: arn, type: 'user' };
}

function principalMember(body: Body, name: string, required: boolean): string | undefined {
  const value = required ? text(body, name, true) : text(body, name);
  if (value !== undefined && !HUAWEI_PRINCIPAL.test(value)) throw invalid('KMS.2402', `${name} must match ^[a-zA-Z0-9]{1,64}$.`);
  return value;
}

function grantId(body: Body): string {
  const id = text(body, 'grant_id', true);
  if (!/^[0-9a-f]{64}$/.test(id)) throw invalid('KMS.2501', 'grant_id must be 64 hexadecimal characters.');
  return id;
}

export const createGrant: Action = async (body, ctx, services) => {
  const keyId = keyRef(body, { idOnly: true });
  const grantee = principalMember(body, 'grantee_principal', true)!;
  const type = text(body, 'grantee_principal_type') ?? 'user';
  if (type !== 'user' && type !== 'domain') throw invalid('KMS.0308', 'grantee_principal_type must be user or domain.');
  const ops = body.operations;
  if (ops === undefined || ops === null) throw invalid('KMS.0204', 'operations is required.');
  // Own entries only: `o in GRANT_OPERATIONS` also accepts "constructor", "toString" … of Object.prototype.
  if (!Array.isArray(ops) || ops.length === 0 || ops.some((o) => typeof o !== 'string' || !hasOwnKey(GRANT_OPERATIONS, o))) {
    throw invalid('KMS.0308', `operations must list some of ${Object.keys(GRANT_OPERATIONS).join(', ')}.`);
  }
  if (ops.every((o) => o === 'create-grant')) throw invalid('KMS.2401');
  const name = text(body, 'name');
  if (name !== undefined && !/^[a-zA-Z0-9:/_-]{1,255}$/.test(name)) throw invalid('KMS.0308', 'name must match ^[a-zA-Z0-9:/_-]{1,255}$.');
  const retiring = principalMember(body, 'retiring_principal', false);
  const out = await call(
    'CreateGrant',
    {
      KeyId: keyId,
      GranteePrincipal: principalArn(grantee, type, ctx.scope.accountId),
      Operations: [...new Set((ops as string[]).map((o) => ownValue(GRANT_OPERATIONS, o)!))],
      ...(name !== undefined ? { Name: name } : {}),
      ...(retiring !== undefined ? { RetiringPrincipal: principalArn(retiring, 'user', ctx.scope.accountId) } : {}),
    },
    ctx,
    services,
  );
  return { grant_id: out.GrantId, grant_token: out.GrantToken };
};

function grantOf(g: GrantListEntry, accountId: string): Body {
  const grantee = huaweiPrincipal(g.GranteePrincipal ?? '', accountId);
  return {
    key_id: keyIdOf(g.KeyId),
    grant_id: g.GrantId,
    grantee_principal: grantee.id,
    grantee_principal_type: grantee.type,
    operations: (g.Operations ?? []).flatMap((o) => huaweiOperationsOf(o)),
    issuing_principal: huaweiPrincipal(g.IssuingAccount ?? '', accountId).id,
    creation_date: g.CreationDate ? String(g.CreationDate.getTime()) : '',
    name: g.Name ?? '',
    retiring_principal: g.RetiringPrincipal ? huaweiPrincipal(g.RetiringPrincipal, accountId).id : '',
  };
}

/** limit (1–100, default 100) and numeric marker over the whole list, as list-keys pages. */
async function grantPage(body: Body, ctx: RequestContext, fetch: (marker?: string) => Promise<OperationShapes['ListGrants']['output']>): Promise<Body> {
  const limit = whole(body, 'limit', 'KMS.1601', false, [1, 100]) ?? 100;
  const offset = whole(body, 'marker', 'KMS.1602', false, [0, 999_999]) ?? 0;
  const all: GrantListEntry[] = [];
  let marker: string | undefined;
  do {
    const page = await fetch(marker);
    all.push(...(page.Grants ?? []));
    marker = page.Truncated ? page.NextMarker : undefined;
  } while (marker);
  const truncated = offset + limit < all.length;
  return {
    grants: all.slice(offset, offset + limit).map((g) => grantOf(g, ctx.scope.accountId)),
    next_marker: truncated ? String(offset + limit) : '',
    truncated: truncated ? 'true' : 'false',
    total: all.length,
  };
}

export const listGrants: Action = async (body, ctx, services) => {
  const keyId = keyRef(body, { idOnly: true });
  return grantPage(body, ctx, (marker) => call('ListGrants', { KeyId: keyId, Limit: 100, Marker: marker }, ctx, services));
};

/** The grants the caller may retire: those whose retiring principal is the caller. */
export const listRetirableGrants: Action = async (body, ctx, services) =>
  grantPage(body, ctx, (marker) => call('ListRetirableGrants', { RetiringPrincipal: ctx.caller.principalArn, Limit: 100, Marker: marker }, ctx, services));

export const revokeGrant: Action = async (body, ctx, services) => {
  const keyId = keyRef(body, { idOnly: true });
  await call('RevokeGrant', { KeyId: keyId, GrantId: grantId(body) }, ctx, services);
  return {};
};

export const retireGrant: Action = async (body, ctx, services) => {
  const keyId = keyRef(body, { idOnly: true });
  await call('RetireGrant', { KeyId: keyId, GrantId: grantId(body) }, ctx, services);
  return {};
};
