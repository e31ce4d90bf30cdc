/**
 * UpdateAlias and DeleteAlias in strict mode, in process: a request is authorised against the
 * key the alias points at when it changes it, also when another request moved the alias
 * meanwhile. The aliases' behaviour through the SDK: aliases-create-update-delete.test.ts and
 * aliases-listing.test.ts.
 */
import { randomUUID } from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { expect } from 'chai';
import { Credentials } from '../../src/access/credentials';
import { KmsError } from '../../src/errors';
import { OPERATIONS, type RequestContext, type Services } from '../../src/operations';
import { createAlias } from '../../src/operations/create-alias';
import { createKey } from '../../src/operations/create-key';
import { type InProcessService, openInProcessService } from '../support/in-process';
import { ADMINISTRATOR_POLICY } from '../support/server';

describe('UpdateAlias and DeleteAlias are authorised against the key they change (in process, strict mode)', function () {
  const ACCOUNT = '111122223333';
  const DAVE = { accountId: ACCOUNT, principalArn: `arn:aws:iam::${ACCOUNT}:user/dave`, accessKeyId: 'AKIADAVE00000000001' };
  const ADMIN = { accountId: ACCOUNT, principalArn: `arn:aws:iam::${ACCOUNT}:user/admin`, accessKeyId: 'AKIAADMIN0000000001' };
  let harness: InProcessService;
  let services: Services;
  let root: RequestContext;
  let dave: RequestContext;
  // As the wire calls them.
  const deleteAlias = OPERATIONS.DeleteAlias!;
  const updateAlias = OPERATIONS.UpdateAlias!;

  before(async () => {
    harness = await openInProcessService('alias-authorisation', Date.now());
    ({ services, ctx: root } = harness);
    const file = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'p11kms-alias-access-')), 'credentials.json');
    const everyAliasAction = { Version: '2012-10-17', Statement: [{ Effect: 'Allow', Action: ['kms:UpdateAlias', 'kms:DeleteAlias'], Resource: '*' }] };
    fs.writeFileSync(file, JSON.stringify({ accessKeys: [{ ...DAVE, secretAccessKey: 'dave-secret' }, { ...ADMIN, secretAccessKey: 'admin-secret' }], identityPolicies: { [DAVE.principalArn]: everyAliasAction, [ADMIN.principalArn]: ADMINISTRATOR_POLICY } }));
    services.access = { enforce: true, directory: Credentials.load(file).directory() };
    dave = { ...root, caller: DAVE };
  });
  after(async () => harness?.close());

  /** A key whose policy names dave (his key) or only an administrator (not his). */
  async function keyFor(daveAllowed: boolean): Promise<string> {
    const admin = { Effect: 'Allow', Principal: { AWS: ADMIN.principalArn }, Action: 'kms:*', Resource: '*' };
    const his = { Effect: 'Allow', Principal: { AWS: DAVE.principalArn }, Action: ['kms:UpdateAlias', 'kms:DeleteAlias'], Resource: '*' };
    const Policy = JSON.stringify({ Version: '2012-10-17', Statement: daveAllowed ? [admin, his] : [admin] });
    return (await createKey({ Policy, BypassPolicyLockoutSafetyCheck: true }, root, services)).KeyMetadata!.KeyId;
  }

  /** Runs `request` with another request's UpdateAlias to `movedTo` committing just before its first transaction, after its authorisation. */
  async function withAliasMovedUnderIt(aliasName: string, movedTo: string, request: () => Promise<unknown>): Promise<unknown> {
    const store = services.store;
    const transact = store.transact.bind(store);
    store.transact = (async (body: Parameters<typeof transact>[0]) => {
      store.transact = transact;
      await transact(async (tx) => tx.putAlias({ ...(await tx.getAlias(root.scope, aliasName))!, targetKeyId: movedTo }));
      return transact(body);
    }) as typeof store.transact;
    try {
      return await request().then(
        () => 'succeeded',
        (err: KmsError) => err,
      );
    } finally {
      store.transact = transact;
    }
  }

  const refusedOnB: Array<[string, (aliasName: string, c: string) => Promise<unknown>]> = [
    ['DeleteAlias by a caller allowed on key A', (aliasName) => deleteAlias({ AliasName: aliasName }, dave, services)],
    ['UpdateAlias (to key C) by a caller allowed on keys A and C', (aliasName, c) => updateAlias({ AliasName: aliasName, TargetKeyId: c }, dave, services)],
  ];
  for (const [what, request] of refusedOnB) {
    it(`${what}, while the alias is moved to key B: AccessDeniedException, the alias stays on B`, async () => {
      const [a, b, c] = [await keyFor(true), await keyFor(false), await keyFor(true)];
      const aliasName = `alias/moved-${randomUUID()}`;
      await createAlias({ AliasName: aliasName, TargetKeyId: a }, { ...root, caller: ADMIN }, services);
      const outcome = await withAliasMovedUnderIt(aliasName, b, () => request(aliasName, c));
      expect(outcome).to.be.instanceOf(KmsError);
      expect((outcome as KmsError).name).to.equal('AccessDeniedException');
      expect((await services.store.getAlias(root.scope, aliasName))?.targetKeyId).to.equal(b);
    });
  }

  it('the same moves between two keys the caller may change: the request is served against the new target', async () => {
    const [a, a2, c] = [await keyFor(true), await keyFor(true), await keyFor(true)];
    const aliasName = `alias/moved-${randomUUID()}`;
    await createAlias({ AliasName: aliasName, TargetKeyId: a }, { ...root, caller: ADMIN }, services);
    expect(await withAliasMovedUnderIt(aliasName, a2, () => updateAlias({ AliasName: aliasName, TargetKeyId: c }, dave, services))).to.equal('succeeded');
    expect((await services.store.getAlias(root.scope, aliasName))?.targetKeyId).to.equal(c);
    expect(await withAliasMovedUnderIt(aliasName, a, () => deleteAlias({ AliasName: aliasName }, dave, services))).to.equal('succeeded');
    expect(await services.store.getAlias(root.scope, aliasName)).to.equal(undefined);
  });
});
