import * as fs from 'node:fs';
import * as path from 'node:path';
import {
  CreateAliasCommand,
  CreateGrantCommand,
  CreateKeyCommand,
  DecryptCommand,
  DescribeKeyCommand,
  EncryptCommand,
  GenerateRandomCommand,
  GetParametersForImportCommand,
  ImportKeyMaterialCommand,
  ListAliasesCommand,
  ListKeysCommand,
  GetKeyPolicyCommand,
  ListGrantsCommand,
  ListKeyPoliciesCommand,
  ListRetirableGrantsCommand,
  PutKeyPolicyCommand,
  ReEncryptCommand,
  RetireGrantCommand,
  ScheduleKeyDeletionCommand,
  SignCommand,
} from '@aws-sdk/client-kms';
import { expect } from 'chai';
import { expectKmsError, serverPerSuite, TestServer } from '../support/server';
import { A, ADMIN, adminStatement, APP, AUDITOR, B, BOB, CAROL, DAVE, denied, EVE, policy, ROOT_A, rootStatement, strictServer } from '../support/strict-principals';

describe('access control (strict mode): key policies, identity policies, grants', function () {
  const { c, createKey } = strictServer();
  const plaintext = Buffer.from('attack at dawn');

  describe('key policies', function () {
    it('attaches AWS’s default key policy; GetKeyPolicy and ListKeyPolicies return it', async () => {
      const key = await createKey();
      const got = await c.ADMIN.send(new GetKeyPolicyCommand({ KeyId: key.KeyId!, PolicyName: 'default' }));
      expect(got.PolicyName).to.equal('default');
      expect(got.Policy).to.equal(
        `{"Version":"2012-10-17","Id":"key-default-1","Statement":[{"Sid":"Enable IAM User Permissions","Effect":"Allow","Principal":{"AWS":"arn:aws:iam::${A}:root"},"Action":"kms:*","Resource":"*"}]}`,
      );
      const listed = await c.ADMIN.send(new ListKeyPoliciesCommand({ KeyId: key.KeyId! }));
      expect(listed.PolicyNames).to.deep.equal(['default']);
      expect(listed.Truncated).to.equal(false);
    });

    it('a PolicyName other than default is NotFoundException on PutKeyPolicy as on GetKeyPolicy, and changes nothing', async () => {
      const key = await createKey();
      const before = (await c.ADMIN.send(new GetKeyPolicyCommand({ KeyId: key.KeyId! }))).Policy;
      const put = await expectKmsError(c.ADMIN.send(new PutKeyPolicyCommand({ KeyId: key.KeyId!, PolicyName: 'other', Policy: policy({ Principal: { AWS: `arn:aws:iam::${A}:root` }, Action: 'kms:*' }) })));
      const got = await expectKmsError(c.ADMIN.send(new GetKeyPolicyCommand({ KeyId: key.KeyId!, PolicyName: 'other' })));
      for (const err of [put, got]) expect([err.name, err.message, err.$metadata?.httpStatusCode]).to.deep.equal(['NotFoundException', 'No such policy exists: other', 400]);
      expect((await c.ADMIN.send(new GetKeyPolicyCommand({ KeyId: key.KeyId! }))).Policy).to.equal(before);
    });

    it('default policy: principals of the account are allowed as far as their identity policies allow (the administrator entry: everything)', async () => {
      const key = await createKey();
      await c.ADMIN.send(new EncryptCommand({ KeyId: key.KeyId!, Plaintext: plaintext }));
      await c.AUDITOR.send(new DescribeKeyCommand({ KeyId: key.KeyId! }));
      const err = await expectKmsError(c.AUDITOR.send(new EncryptCommand({ KeyId: key.KeyId!, Plaintext: plaintext })));
      expect(err.name).to.equal('AccessDeniedException');
      expect(err.message).to.equal(denied(AUDITOR, 'kms:Encrypt', key.Arn!, 'because no identity-based policy allows the kms:Encrypt action'));
    });

    it('rejects malformed documents with MalformedPolicyDocumentException', async () => {
      const cases: Array<[string, RegExp]> = [
        ['{"Statement": [', /not valid JSON/],
        [JSON.stringify({ Version: '2012-10-17', Statement: [{ ...adminStatement, Effect: 'Permit', Resource: '*' }] }), /invalid Effect/],
        [JSON.stringify({ Version: '2012-10-17', Statement: [{ ...adminStatement, Effect: 'Allow', Resource: '*', Colour: 'red' }] }), /unknown field 'Colour'/],
        [policy({ Principal: { AWS: `arn:aws:iam::${A}:user/nobody` }, Action: 'kms:*' }), /^Policy contains a statement with one or more invalid principals\.$/],
        [policy({ Principal: { AWS: '999999999999' }, Action: 'kms:*' }), /invalid principals/],
      ];
      for (const [doc, message] of cases) {
        const err = await expectKmsError(createKey({ Policy: doc }));
        expect(err.name, doc).to.equal('MalformedPolicyDocumentException');
        expect(err.message, doc).to.match(message);
      }
    });

    it('refuses a key policy over 32 KiB with LimitExceededException and keeps the old one; 32 KiB exactly is accepted', async () => {
      const padded = (bytes: number) => {
        const base = policy({ ...adminStatement, Sid: '' });
        return policy({ ...adminStatement, Sid: 'x'.repeat(bytes - Buffer.byteLength(base)) });
      };
      expect(Buffer.byteLength(padded(32_768))).to.equal(32_768);
      const key = await createKey({ Policy: padded(32_768) });
      const tooLarge = await expectKmsError(c.ADMIN.send(new PutKeyPolicyCommand({ KeyId: key.KeyId!, Policy: padded(32_769) })));
      expect([tooLarge.name, tooLarge.message]).to.deep.equal(['LimitExceededException', 'The key policy is 32769 bytes; the limit is 32768 bytes.']);
      expect((await c.ADMIN.send(new GetKeyPolicyCommand({ KeyId: key.KeyId! }))).Policy).to.equal(padded(32_768));
      expect((await expectKmsError(createKey({ Policy: padded(32_769) }))).name).to.equal('LimitExceededException');
    });

    it('lockout safety check: a policy the caller could not change afterwards is refused unless bypassed', async () => {
      const lockout = policy({ Principal: { AWS: BOB.principalArn }, Action: 'kms:*' });
      const err = await expectKmsError(createKey({ Policy: lockout }));
      expect(err.name).to.equal('MalformedPolicyDocumentException');
      expect(err.message).to.equal('The new key policy will not allow you to update the key policy in the future.');
      const key = await createKey({ Policy: policy(adminStatement) });
      const put = await expectKmsError(c.ADMIN.send(new PutKeyPolicyCommand({ KeyId: key.KeyId!, Policy: lockout })));
      expect(put.message).to.equal('The new key policy will not allow you to update the key policy in the future.');
      await c.ADMIN.send(new PutKeyPolicyCommand({ KeyId: key.KeyId!, Policy: lockout, BypassPolicyLockoutSafetyCheck: true }));
      const after = await expectKmsError(c.ADMIN.send(new DescribeKeyCommand({ KeyId: key.KeyId! })));
      expect(after.message).to.equal(denied(ADMIN, 'kms:DescribeKey', key.Arn!));
    });

    it('a statement without Action or Resource is accepted and has no effect (AWS: "the PutKeyPolicy API request succeeds"); Action with NotAction is malformed', async () => {
      const key = await createKey();
      const ineffective = policy(
        adminStatement,
        { Sid: 'no resource', Principal: { AWS: DAVE.principalArn }, Action: 'kms:*', Resource: undefined },
        { Sid: 'no action', Principal: { AWS: DAVE.principalArn }, Resource: '*' },
        { Sid: 'deny without resource', Effect: 'Deny', Principal: '*', Action: 'kms:*', Resource: undefined },
      );
      await c.ADMIN.send(new PutKeyPolicyCommand({ KeyId: key.KeyId!, Policy: ineffective }));
      expect((await c.ADMIN.send(new GetKeyPolicyCommand({ KeyId: key.KeyId! }))).Policy).to.equal(ineffective);
      const err = await expectKmsError(c.DAVE.send(new DescribeKeyCommand({ KeyId: key.KeyId! })));
      expect(err.message).to.equal(denied(DAVE, 'kms:DescribeKey', key.Arn!));
      await c.ADMIN.send(new EncryptCommand({ KeyId: key.KeyId!, Plaintext: plaintext }));
      // The lockout safety check counts only effective statements.
      const lockout = await expectKmsError(c.ADMIN.send(new PutKeyPolicyCommand({ KeyId: key.KeyId!, Policy: policy({ ...adminStatement, Resource: undefined }) })));
      expect([lockout.name, lockout.message]).to.deep.equal(['MalformedPolicyDocumentException', 'The new key policy will not allow you to update the key policy in the future.']);
      const both = await expectKmsError(createKey({ Policy: policy(adminStatement, { Principal: { AWS: DAVE.principalArn }, Action: 'kms:Encrypt', NotAction: 'kms:Decrypt' }) }));
      expect([both.name, both.message]).to.deep.equal(['MalformedPolicyDocumentException', 'Statement 2 must not have both Action and NotAction.']);
    });

    it('refuses ForAllValues with kms:EncryptionContext:<key> or aws:RequestTag/<key> (AWS: OverlyPermissiveCondition) and keeps the old policy', async () => {
      const key = await createKey({ Policy: policy(adminStatement) });
      const cases: Array<[string, string, string]> = [
        ['kms:EncryptionContext:Department', 'OverlyPermissiveCondition:EncryptionContext:', 'encryption context'],
        ['aws:RequestTag/team', 'OverlyPermissiveCondition:', 'tag'],
      ];
      for (const [conditionKey, prefix, what] of cases) {
        const doc = policy(adminStatement, { Principal: { AWS: DAVE.principalArn }, Action: 'kms:Decrypt', Condition: { 'ForAllValues:StringEquals': { [conditionKey]: 'IT' } } });
        const err = await expectKmsError(c.ADMIN.send(new PutKeyPolicyCommand({ KeyId: key.KeyId!, Policy: doc })));
        expect([err.name, err.message]).to.deep.equal([
          'MalformedPolicyDocumentException',
          `${prefix} Using the ForAllValues set operator with a single-valued condition key matches requests without the specified ${what} or with an unspecified ${what}. To fix, remove ForAllValues.`,
        ]);
        expect((await expectKmsError(createKey({ Policy: doc }))).name).to.equal('MalformedPolicyDocumentException');
      }
      expect((await c.ADMIN.send(new GetKeyPolicyCommand({ KeyId: key.KeyId! }))).Policy).to.equal(policy(adminStatement));
      // ForAnyValue is not refused (AWS names ForAllValues only).
      await c.ADMIN.send(new PutKeyPolicyCommand({ KeyId: key.KeyId!, Policy: policy(adminStatement, { Principal: { AWS: DAVE.principalArn }, Action: 'kms:Decrypt', Condition: { 'ForAnyValue:StringEquals': { 'kms:EncryptionContext:Department': 'IT' } } }) }));
    });

    it('refuses two statements with one Sid (MalformedPolicyDocumentException) and keeps the old policy; statements without Sid may be many', async () => {
      const key = await createKey({ Policy: policy(adminStatement) });
      const twice = policy(adminStatement, { Sid: 'reader', Principal: { AWS: DAVE.principalArn }, Action: 'kms:DescribeKey' }, { Sid: 'reader', Principal: { AWS: DAVE.principalArn }, Action: 'kms:Decrypt' });
      // Both awaited from the start (the second may be refused before the first is looked at).
      for (const err of await Promise.all([c.ADMIN.send(new PutKeyPolicyCommand({ KeyId: key.KeyId!, Policy: twice })), createKey({ Policy: twice })].map(expectKmsError))) {
        expect([err.name, err.message]).to.deep.equal(['MalformedPolicyDocumentException', 'Statement IDs (SID) in a single policy must be unique.']);
      }
      expect((await c.ADMIN.send(new GetKeyPolicyCommand({ KeyId: key.KeyId! }))).Policy).to.equal(policy(adminStatement));
      const unnamed = policy(adminStatement, { Sid: undefined, Principal: { AWS: DAVE.principalArn }, Action: 'kms:DescribeKey' }, { Sid: undefined, Principal: { AWS: DAVE.principalArn }, Action: 'kms:Decrypt' });
      await c.ADMIN.send(new PutKeyPolicyCommand({ KeyId: key.KeyId!, Policy: unnamed }));
      expect((await c.DAVE.send(new DescribeKeyCommand({ KeyId: key.KeyId! }))).KeyMetadata!.KeyId).to.equal(key.KeyId);
    });

    it('kms:BypassPolicyLockoutSafetyCheck is absent when the request leaves the parameter out (AWS’s Null example allows PutKeyPolicy only then)', async () => {
      const guarded = policy(
        { Sid: 'admin', Principal: { AWS: ADMIN.principalArn }, NotAction: 'kms:PutKeyPolicy' },
        { Sid: 'put', Principal: { AWS: ADMIN.principalArn }, Action: 'kms:PutKeyPolicy', Condition: { Null: { 'kms:BypassPolicyLockoutSafetyCheck': true } } },
      );
      // The lockout check asks about a later PutKeyPolicy without the parameter: it passes.
      const key = await createKey({ Policy: guarded });
      await c.ADMIN.send(new PutKeyPolicyCommand({ KeyId: key.KeyId!, Policy: guarded }));
      for (const bypass of [true, false]) {
        const err = await expectKmsError(c.ADMIN.send(new PutKeyPolicyCommand({ KeyId: key.KeyId!, Policy: guarded, BypassPolicyLockoutSafetyCheck: bypass })));
        expect(err.message, String(bypass)).to.equal(denied(ADMIN, 'kms:PutKeyPolicy', key.Arn!));
      }
    });

    it('least privilege: an application that may only Encrypt with one encryption context, an auditor that may only DescribeKey', async () => {
      const key = await createKey({
        Policy: policy(
          adminStatement,
          {
            Sid: 'app',
            Principal: { AWS: `arn:aws:iam::${A}:role/billing-app` },
            Action: 'kms:Encrypt',
            Condition: { StringEquals: { 'kms:EncryptionContext:app': 'billing' }, 'ForAllValues:StringEquals': { 'kms:EncryptionContextKeys': ['app'] } },
          },
          { Sid: 'auditor', Principal: { AWS: AUDITOR.principalArn }, Action: 'kms:DescribeKey' },
        ),
      });
      const { CiphertextBlob } = await c.APP.send(new EncryptCommand({ KeyId: key.KeyId!, Plaintext: plaintext, EncryptionContext: { app: 'billing' } }));
      for (const context of [{ app: 'web' }, { app: 'billing', extra: 'x' }, undefined] as Array<Record<string, string> | undefined>) {
        const err = await expectKmsError(c.APP.send(new EncryptCommand({ KeyId: key.KeyId!, Plaintext: plaintext, EncryptionContext: context })));
        expect(err.name).to.equal('AccessDeniedException');
        expect(err.message).to.equal(denied(APP, 'kms:Encrypt', key.Arn!));
      }
      const dec = await expectKmsError(c.APP.send(new DecryptCommand({ CiphertextBlob, EncryptionContext: { app: 'billing' } })));
      expect(dec.message).to.equal(
        `User: ${APP.principalArn} is not authorized to perform: kms:Decrypt on the resource associated with this ciphertext because the resource does not exist in this Region, no resource-based policies allow access, or a resource-based policy explicitly denies access`,
      );
      await c.AUDITOR.send(new DescribeKeyCommand({ KeyId: key.Arn! }));
      const enc = await expectKmsError(c.AUDITOR.send(new EncryptCommand({ KeyId: key.KeyId!, Plaintext: plaintext })));
      expect(enc.message).to.equal(denied(AUDITOR, 'kms:Encrypt', key.Arn!));
      // The account root statement is absent: identity policies cannot add anything.
      const root = await expectKmsError(c.ROOT_A.send(new DescribeKeyCommand({ KeyId: key.KeyId! })));
      expect(root.message).to.equal(denied(ROOT_A, 'kms:DescribeKey', key.Arn!));
    });

    it('an explicit Deny wins over every Allow', async () => {
      const key = await createKey({
        Policy: policy(rootStatement, adminStatement, { Effect: 'Deny', Principal: { AWS: ADMIN.principalArn }, Action: 'kms:Decrypt' }),
      });
      const { CiphertextBlob } = await c.ADMIN.send(new EncryptCommand({ KeyId: key.KeyId!, Plaintext: plaintext }));
      const err = await expectKmsError(c.ADMIN.send(new DecryptCommand({ CiphertextBlob, KeyId: key.Arn! })));
      expect(err.name).to.equal('AccessDeniedException');
      expect(err.message).to.equal(denied(ADMIN, 'kms:Decrypt', key.Arn!, 'with an explicit deny in a resource-based policy'));
      await c.ROOT_A.send(new DecryptCommand({ CiphertextBlob }));
    });

    it('conditions: kms:CallerAccount, aws:SourceIp, aws:CurrentTime, kms:RequestAlias, kms:SigningAlgorithm', async () => {
      const key = await createKey({
        Policy: policy(adminStatement, {
          Principal: '*',
          Action: ['kms:Encrypt', 'kms:DescribeKey'],
          Condition: {
            StringEquals: { 'kms:CallerAccount': B },
            IpAddress: { 'aws:SourceIp': ['127.0.0.0/8', '::1/128'] },
            DateLessThan: { 'aws:CurrentTime': '2100-01-01T00:00:00Z' },
          },
        }, { Effect: 'Deny', Principal: '*', Action: 'kms:DescribeKey', Condition: { NotIpAddress: { 'aws:SourceIp': '10.0.0.0/8' }, StringEquals: { 'kms:CallerAccount': B }, StringLike: { 'kms:RequestAlias': 'alias/blocked*' } } }),
      });
      await c.BOB.send(new EncryptCommand({ KeyId: key.Arn!, Plaintext: plaintext }));
      await c.BOB.send(new DescribeKeyCommand({ KeyId: key.Arn! }));
      await c.ADMIN.send(new CreateAliasCommand({ AliasName: 'alias/blocked-for-b', TargetKeyId: key.KeyId! }));
      const viaAlias = await expectKmsError(c.BOB.send(new DescribeKeyCommand({ KeyId: `arn:aws:kms:us-east-1:${A}:alias/blocked-for-b` })));
      expect(viaAlias.message).to.equal(denied(BOB, 'kms:DescribeKey', key.Arn!, 'with an explicit deny in a resource-based policy'));

      const noIp = await createKey({ Policy: policy(adminStatement, { Principal: '*', Action: 'kms:Encrypt', Condition: { IpAddress: { 'aws:SourceIp': '10.0.0.0/8' } } }) });
      const err = await expectKmsError(c.BOB.send(new EncryptCommand({ KeyId: noIp.Arn!, Plaintext: plaintext })));
      expect(err.message).to.equal(denied(BOB, 'kms:Encrypt', noIp.Arn!));

      const signing = await createKey({
        KeySpec: 'ECC_NIST_P256',
        KeyUsage: 'SIGN_VERIFY',
        Policy: policy(adminStatement, { Effect: 'Deny', Principal: '*', Action: 'kms:Sign', Condition: { StringNotEquals: { 'kms:SigningAlgorithm': 'ECDSA_SHA_256' } } }),
      });
      await c.ADMIN.send(new SignCommand({ KeyId: signing.KeyId!, Message: plaintext, SigningAlgorithm: 'ECDSA_SHA_256' }));
    });
  });

  describe('IAM semantics: identity policies, account-level actions, variables, NotPrincipal, condition keys', function () {
    it('a user without identity policies gets only what key policies grant it by name; the account root keeps full rights', async () => {
      const key = await createKey();
      const err = await expectKmsError(c.DAVE.send(new EncryptCommand({ KeyId: key.KeyId!, Plaintext: plaintext })));
      expect(err.name).to.equal('AccessDeniedException');
      expect(err.message).to.equal(denied(DAVE, 'kms:Encrypt', key.Arn!, 'because no identity-based policy allows the kms:Encrypt action'));
      await c.ROOT_A.send(new EncryptCommand({ KeyId: key.KeyId!, Plaintext: plaintext }));
      const named = await createKey({ Policy: policy(adminStatement, { Principal: { AWS: DAVE.principalArn }, Action: 'kms:Encrypt' }) });
      await c.DAVE.send(new EncryptCommand({ KeyId: named.KeyId!, Plaintext: plaintext }));
    });

    it('account-level actions (ListKeys, ListAliases, GenerateRandom, CreateKey, ListRetirableGrants) need the action in identity policies', async () => {
      const cases: Array<[string, () => Promise<unknown>]> = [
        ['kms:ListKeys', () => c.DAVE.send(new ListKeysCommand({}))],
        ['kms:ListAliases', () => c.DAVE.send(new ListAliasesCommand({}))],
        ['kms:GenerateRandom', () => c.DAVE.send(new GenerateRandomCommand({ NumberOfBytes: 16 }))],
        ['kms:CreateKey', () => c.DAVE.send(new CreateKeyCommand({}))],
        ['kms:ListRetirableGrants', () => c.DAVE.send(new ListRetirableGrantsCommand({ RetiringPrincipal: DAVE.principalArn }))],
      ];
      for (const [action, call] of cases) {
        const err = await expectKmsError(call());
        expect(err.name, action).to.equal('AccessDeniedException');
        // ListRetirableGrants is authorised on the retiring principal it names (AWS's API reference).
        const resource = action === 'kms:ListRetirableGrants' ? DAVE.principalArn : '*';
        expect(err.message).to.equal(denied(DAVE, action, resource, `because no identity-based policy allows the ${action} action`));
      }
      const auditor = await expectKmsError(c.AUDITOR.send(new ListKeysCommand({})));
      expect(auditor.message).to.equal(denied(AUDITOR, 'kms:ListKeys', '*', 'because no identity-based policy allows the kms:ListKeys action'));
      expect((await c.ROOT_A.send(new GenerateRandomCommand({ NumberOfBytes: 16 }))).Plaintext).to.have.length(16);
      await c.ROOT_A.send(new ListKeysCommand({}));
      await c.ADMIN.send(new ListAliasesCommand({}));
    });

    it('policy variables: ${aws:username}, ${aws:PrincipalAccount} and ${aws:PrincipalTag/team} in conditions and resources', async () => {
      const key = await createKey();
      await c.EVE.send(new EncryptCommand({ KeyId: key.KeyId!, Plaintext: plaintext, EncryptionContext: { owner: 'eve', team: 'billing' } }));
      for (const context of [{ owner: 'dave', team: 'billing' }, { owner: 'eve', team: 'web' }, { owner: '${aws:username}', team: 'billing' }]) {
        const err = await expectKmsError(c.EVE.send(new EncryptCommand({ KeyId: key.KeyId!, Plaintext: plaintext, EncryptionContext: context })));
        expect(err.message, JSON.stringify(context)).to.equal(denied(EVE, 'kms:Encrypt', key.Arn!, 'because no identity-based policy allows the kms:Encrypt action'));
      }
      await c.EVE.send(new CreateAliasCommand({ AliasName: 'alias/eve-reports', TargetKeyId: key.KeyId! }));
      const other = await expectKmsError(c.EVE.send(new CreateAliasCommand({ AliasName: 'alias/dave-reports', TargetKeyId: key.KeyId! })));
      expect(other.message).to.equal(denied(EVE, 'kms:CreateAlias', `arn:aws:kms:us-east-1:${A}:alias/dave-reports`, 'because no identity-based policy allows the kms:CreateAlias action'));
    });

    it('NotPrincipal with Deny spares an assumed-role session only when the session, its role and its account are all named', async () => {
      const role = `arn:aws:iam::${A}:role/billing-app`;
      const make = (...notPrincipals: string[]) =>
        createKey({ Policy: policy(adminStatement, { Principal: { AWS: role }, Action: 'kms:Encrypt' }, { Effect: 'Deny', NotPrincipal: { AWS: [ADMIN.principalArn, ...notPrincipals] }, Action: 'kms:Encrypt' }) });
      for (const names of [[APP.principalArn], [APP.principalArn, role]]) {
        const key = await make(...names);
        const err = await expectKmsError(c.APP.send(new EncryptCommand({ KeyId: key.KeyId!, Plaintext: plaintext })));
        expect(err.message, names.join()).to.equal(denied(APP, 'kms:Encrypt', key.Arn!, 'with an explicit deny in a resource-based policy'));
      }
      const spared = await make(APP.principalArn, role, `arn:aws:iam::${A}:root`);
      await c.APP.send(new EncryptCommand({ KeyId: spared.KeyId!, Plaintext: plaintext }));
    });

    it('every signed request carries aws:PrincipalIsAWSService and aws:ViaAWSService (false) and aws:ResourceAccount (the key’s account), as IAM documents', async () => {
      const key = await createKey({
        Policy: policy(
          adminStatement,
          { Principal: { AWS: [DAVE.principalArn, `arn:aws:iam::${B}:root`] }, Action: 'kms:Encrypt', Condition: { Bool: { 'aws:PrincipalIsAWSService': 'false', 'aws:ViaAWSService': 'false' }, StringEquals: { 'aws:ResourceAccount': A } } },
          // AWS's data-perimeter pattern: no principal outside the account unless it is an AWS service.
          { Effect: 'Deny', Principal: '*', Action: 'kms:*', Condition: { StringNotEquals: { 'aws:PrincipalAccount': A }, Bool: { 'aws:PrincipalIsAWSService': 'false' } } },
        ),
      });
      await c.DAVE.send(new EncryptCommand({ KeyId: key.KeyId!, Plaintext: plaintext }));
      const outsider = await expectKmsError(c.BOB.send(new EncryptCommand({ KeyId: key.Arn!, Plaintext: plaintext })));
      expect(outsider.message).to.equal(denied(BOB, 'kms:Encrypt', key.Arn!, 'with an explicit deny in a resource-based policy'));
    });

    it('condition keys kms:ReEncryptOnSameKey, kms:WrappingAlgorithm, kms:ExpirationModel and kms:ValidTo', async () => {
      const key = await createKey({ Policy: policy(adminStatement, { Effect: 'Deny', Principal: '*', Action: 'kms:ReEncrypt*', Condition: { Bool: { 'kms:ReEncryptOnSameKey': 'true' } } }) });
      const other = await createKey();
      const { CiphertextBlob } = await c.ADMIN.send(new EncryptCommand({ KeyId: key.KeyId!, Plaintext: plaintext }));
      const same = await expectKmsError(c.ADMIN.send(new ReEncryptCommand({ CiphertextBlob, DestinationKeyId: key.KeyId! })));
      expect(same.message).to.equal(denied(ADMIN, 'kms:ReEncryptTo', key.Arn!, 'with an explicit deny in a resource-based policy'));
      await c.ADMIN.send(new ReEncryptCommand({ CiphertextBlob, DestinationKeyId: other.KeyId! }));

      const external = await createKey({
        Origin: 'EXTERNAL',
        Policy: policy(
          adminStatement,
          { Effect: 'Deny', Principal: '*', Action: 'kms:GetParametersForImport', Condition: { StringNotEquals: { 'kms:WrappingAlgorithm': 'RSAES_OAEP_SHA_256' } } },
          { Effect: 'Deny', Principal: '*', Action: 'kms:ImportKeyMaterial', Condition: { StringEquals: { 'kms:ExpirationModel': 'KEY_MATERIAL_DOES_NOT_EXPIRE' } } },
          { Effect: 'Deny', Principal: '*', Action: 'kms:ImportKeyMaterial', Condition: { NumericGreaterThan: { 'kms:ValidTo': String(Math.floor(Date.now() / 1000) + 30 * 86400) } } },
        ),
      });
      const params = { KeyId: external.KeyId!, WrappingKeySpec: 'RSA_2048' as const };
      const sha1 = await expectKmsError(c.ADMIN.send(new GetParametersForImportCommand({ ...params, WrappingAlgorithm: 'RSAES_OAEP_SHA_1' })));
      expect(sha1.message).to.equal(denied(ADMIN, 'kms:GetParametersForImport', external.Arn!, 'with an explicit deny in a resource-based policy'));
      const { ImportToken } = await c.ADMIN.send(new GetParametersForImportCommand({ ...params, WrappingAlgorithm: 'RSAES_OAEP_SHA_256' }));
      const material = { KeyId: external.KeyId!, ImportToken, EncryptedKeyMaterial: Buffer.alloc(256, 1) };
      const forever = await expectKmsError(c.ADMIN.send(new ImportKeyMaterialCommand({ ...material, ExpirationModel: 'KEY_MATERIAL_DOES_NOT_EXPIRE' })));
      expect(forever.message).to.equal(denied(ADMIN, 'kms:ImportKeyMaterial', external.Arn!, 'with an explicit deny in a resource-based policy'));
      const late = await expectKmsError(c.ADMIN.send(new ImportKeyMaterialCommand({ ...material, ExpirationModel: 'KEY_MATERIAL_EXPIRES', ValidTo: new Date(Date.now() + 60 * 86400_000) })));
      expect(late.name).to.equal('AccessDeniedException');
      // Within the policy: the request gets past authorisation (and fails on the made-up material).
      const soon = await expectKmsError(c.ADMIN.send(new ImportKeyMaterialCommand({ ...material, ExpirationModel: 'KEY_MATERIAL_EXPIRES', ValidTo: new Date(Date.now() + 86400_000) })));
      expect(soon.name).to.not.equal('AccessDeniedException');
    });

    it('kms:ExpirationModel is absent when ImportKeyMaterial leaves it out (AWS’s Null example allows only such requests)', async () => {
      const external = await createKey({
        Origin: 'EXTERNAL',
        Policy: policy(
          { Sid: 'admin', Principal: { AWS: ADMIN.principalArn }, NotAction: 'kms:ImportKeyMaterial' },
          { Sid: 'import', Principal: { AWS: ADMIN.principalArn }, Action: 'kms:ImportKeyMaterial', Condition: { Null: { 'kms:ExpirationModel': true } } },
        ),
      });
      const { ImportToken } = await c.ADMIN.send(new GetParametersForImportCommand({ KeyId: external.KeyId!, WrappingKeySpec: 'RSA_2048', WrappingAlgorithm: 'RSAES_OAEP_SHA_256' }));
      const material = { KeyId: external.KeyId!, ImportToken, EncryptedKeyMaterial: Buffer.alloc(256, 1), ValidTo: new Date(Date.now() + 86400_000) };
      // Without the parameter the request gets past authorisation (and fails on the made-up material).
      const omitted = await expectKmsError(c.ADMIN.send(new ImportKeyMaterialCommand(material)));
      expect(omitted.name).to.not.equal('AccessDeniedException');
      const explicit = await expectKmsError(c.ADMIN.send(new ImportKeyMaterialCommand({ ...material, ExpirationModel: 'KEY_MATERIAL_EXPIRES' })));
      expect(explicit.message).to.equal(denied(ADMIN, 'kms:ImportKeyMaterial', external.Arn!));
    });
  });

  describe('cross-account use', function () {
    let key: { KeyId?: string; Arn?: string };
    before(async () => {
      key = await createKey({ Policy: policy(rootStatement, { Principal: { AWS: `arn:aws:iam::${B}:root` }, Action: ['kms:Encrypt', 'kms:Decrypt', 'kms:DescribeKey', 'kms:ReEncryptFrom'] }) });
    });

    it('works only through the key ARN', async () => {
      await c.BOB.send(new EncryptCommand({ KeyId: key.Arn!, Plaintext: plaintext }));
      const err = await expectKmsError(c.BOB.send(new EncryptCommand({ KeyId: key.KeyId!, Plaintext: plaintext })));
      expect(err.name).to.equal('NotFoundException');
    });

    it('needs the other account’s identity policy too', async () => {
      const { CiphertextBlob } = await c.BOB.send(new EncryptCommand({ KeyId: key.Arn!, Plaintext: plaintext }));
      const dec = await c.CAROL.send(new DecryptCommand({ CiphertextBlob }));
      expect(Buffer.from(dec.Plaintext!).toString()).to.equal('attack at dawn');
      const err = await expectKmsError(c.CAROL.send(new EncryptCommand({ KeyId: key.Arn!, Plaintext: plaintext })));
      expect(err.message).to.equal(denied(CAROL, 'kms:Encrypt', key.Arn!, 'because no identity-based policy allows the kms:Encrypt action'));
    });

    it('never for key administration (PutKeyPolicy, GetKeyPolicy)', async () => {
      const err = await expectKmsError(c.BOB.send(new GetKeyPolicyCommand({ KeyId: key.Arn!, PolicyName: 'default' })));
      expect(err.message).to.equal(denied(BOB, 'kms:GetKeyPolicy', key.Arn!));
    });

    it('ReEncrypt needs ReEncryptFrom on the source and ReEncryptTo on the destination', async () => {
      const { CiphertextBlob } = await c.ADMIN.send(new EncryptCommand({ KeyId: key.KeyId!, Plaintext: plaintext }));
      const bobKey = await createKey({}, c.BOB);
      await c.BOB.send(new ReEncryptCommand({ CiphertextBlob, DestinationKeyId: bobKey.KeyId! }));
      // The other way round: Bob may not ReEncryptTo the key of account A.
      const { CiphertextBlob: bobBlob } = await c.BOB.send(new EncryptCommand({ KeyId: bobKey.KeyId!, Plaintext: plaintext }));
      const err = await expectKmsError(c.BOB.send(new ReEncryptCommand({ CiphertextBlob: bobBlob, DestinationKeyId: key.Arn! })));
      expect(err.message).to.equal(denied(BOB, 'kms:ReEncryptTo', key.Arn!));
      // Admin of A: no ReEncryptFrom on Bob's key.
      const from = await expectKmsError(c.ADMIN.send(new ReEncryptCommand({ CiphertextBlob: bobBlob, DestinationKeyId: key.KeyId! })));
      expect(from.message).to.match(new RegExp(`^User: ${ADMIN.principalArn} is not authorized to perform: kms:ReEncryptFrom on the resource associated with this ciphertext`));
    });
  });
});

describe('access control (permissive mode): today’s behaviour for CI users', function () {
  let server: TestServer;
  serverPerSuite({ auth: 'permissive' }, (started) => (server = started));

  it('does not enforce key policies: the caller’s own account may use a key whose policy denies everything', async () => {
    const kms = server.client();
    const deny = policy({ Effect: 'Deny', Principal: '*', Action: 'kms:*' }, { Principal: { AWS: 'arn:aws:iam::123456789012:user/anyone' }, Action: 'kms:*' });
    const { KeyMetadata } = await kms.send(new CreateKeyCommand({ Policy: deny }));
    const { CiphertextBlob } = await kms.send(new EncryptCommand({ KeyId: KeyMetadata!.KeyId!, Plaintext: Buffer.from('x') }));
    await kms.send(new DecryptCommand({ CiphertextBlob }));
    expect((await kms.send(new GetKeyPolicyCommand({ KeyId: KeyMetadata!.KeyId!, PolicyName: 'default' }))).Policy).to.equal(deny);
    const err = await expectKmsError(kms.send(new CreateKeyCommand({ Policy: 'nope' })));
    expect(err.name).to.equal('MalformedPolicyDocumentException');
  });

  it('grants are stored and listed', async () => {
    const kms = server.client();
    const { KeyMetadata } = await kms.send(new CreateKeyCommand({}));
    const g = await kms.send(new CreateGrantCommand({ KeyId: KeyMetadata!.KeyId!, GranteePrincipal: 'arn:aws:iam::111122223333:role/x', Operations: ['Decrypt'] }));
    const listed = await kms.send(new ListGrantsCommand({ KeyId: KeyMetadata!.KeyId! }));
    expect(listed.Grants!.map((x) => x.GrantId)).to.deep.equal([g.GrantId]);
    await kms.send(new RetireGrantCommand({ KeyId: KeyMetadata!.Arn!, GrantId: g.GrantId! }));
  });
});

describe('grants end with their key', function () {
  let server: TestServer;
  after(async () => server?.stop());

  it('removes a deleted key’s grants from the store, and at start-up the grants of keys deleted by earlier versions', async () => {
    server = await TestServer.start({ auth: 'permissive' });
    const kms = server.client();
    const { KeyMetadata } = await kms.send(new CreateKeyCommand({}));
    const keyId = KeyMetadata!.KeyId!;
    const kept = (await kms.send(new CreateKeyCommand({}))).KeyMetadata!.KeyId!;
    await kms.send(new CreateGrantCommand({ KeyId: keyId, GranteePrincipal: `arn:aws:iam::${A}:role/x`, Operations: ['Decrypt'] }));
    const keptGrant = await kms.send(new CreateGrantCommand({ KeyId: kept, GranteePrincipal: `arn:aws:iam::${A}:role/x`, Operations: ['Decrypt'] }));
    await kms.send(new ScheduleKeyDeletionCommand({ KeyId: keyId, PendingWindowInDays: 7 }));
    await server.stop();
    // A grant whose key vanished without it (what versions before this one left behind).
    const file = path.join(server.dataDir, 'metadata.json');
    const metadata = JSON.parse(fs.readFileSync(file, 'utf8')) as { grants: Array<{ grantId: string; keyId: string }> };
    metadata.grants.push({ ...metadata.grants[0], grantId: 'f'.repeat(64), keyId: '00000000-0000-4000-8000-000000000000' });
    fs.writeFileSync(file, JSON.stringify(metadata));

    server = await TestServer.start({ auth: 'permissive', dataDir: server.dataDir, clockOffsetSeconds: 8 * 86400 });
    await server.stop();
    const after = JSON.parse(fs.readFileSync(file, 'utf8')) as { grants: Array<{ grantId: string }> };
    expect(after.grants.map((g) => g.grantId)).to.deep.equal([keptGrant.GrantId]);
  });
});
