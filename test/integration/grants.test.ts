import {
  CreateGrantCommand,
  CreateKeyCommand,
  DecryptCommand,
  DescribeKeyCommand,
  EncryptCommand,
  GenerateDataKeyCommand,
  GenerateDataKeyPairCommand,
  ListGrantsCommand,
  ListRetirableGrantsCommand,
  paginateListGrants,
  ReEncryptCommand,
  RetireGrantCommand,
  RevokeGrantCommand,
} from '@aws-sdk/client-kms';
import { expect } from 'chai';
import { expectKmsError, serverPerSuite, type TestServer } from '../support/server';
import { A, adminStatement, APP, B, BOB, CAROL, DAVE, denied, FRANK, policy, ROOT_A, strictServer } from '../support/strict-principals';

describe('grants: the quota of grants per key', function () {
  let server: TestServer;
  serverPerSuite({ env: { P11KMS_GRANTS_PER_KEY: '2' } }, (started) => (server = started));

  it('CreateGrant beyond grantsPerKey is LimitExceededException (AWS: "Grants per KMS key", 50,000); a retired grant frees its place, a Name retry is no new grant', async () => {
    const kms = server.client();
    const key = (await kms.send(new CreateKeyCommand({}))).KeyMetadata!;
    const grant = (Name?: string) => kms.send(new CreateGrantCommand({ KeyId: key.KeyId!, GranteePrincipal: `arn:aws:iam::${A}:role/app`, Operations: ['Decrypt'], Name }));
    const first = await grant('first');
    await grant();
    const over = await expectKmsError(grant());
    expect([over.name, over.message, over.$metadata?.httpStatusCode]).to.deep.equal([
      'LimitExceededException',
      `${key.Arn} has 2 grants; the quota is 2 grants per KMS key. Retire or revoke grants first.`,
      400,
    ]);
    expect((await grant('first')).GrantId).to.equal(first.GrantId);
    await kms.send(new RetireGrantCommand({ GrantToken: first.GrantToken! }));
    await grant();
    expect((await kms.send(new ListGrantsCommand({ KeyId: key.KeyId! }))).Grants).to.have.length(2);
  });
});

describe('grants (strict mode)', function () {
  const { c, createKey } = strictServer();
  const plaintext = Buffer.from('attack at dawn');

  describe('grants', function () {
    let key: { KeyId?: string; Arn?: string };
    before(async () => {
      key = await createKey();
    });

    it('allow exactly their operations, at once through the grant token, until retired', async () => {
      const denyFirst = await expectKmsError(c.BOB.send(new EncryptCommand({ KeyId: key.Arn!, Plaintext: plaintext })));
      expect(denyFirst.message).to.equal(denied(BOB, 'kms:Encrypt', key.Arn!));
      const grant = await c.ADMIN.send(
        new CreateGrantCommand({ KeyId: key.KeyId!, GranteePrincipal: BOB.principalArn, RetiringPrincipal: CAROL.principalArn, Operations: ['Encrypt', 'Decrypt'] }),
      );
      expect(grant.GrantId).to.match(/^[0-9a-f]{64}$/);
      const { CiphertextBlob } = await c.BOB.send(new EncryptCommand({ KeyId: key.Arn!, Plaintext: plaintext, GrantTokens: [grant.GrantToken!] }));
      await c.BOB.send(new DecryptCommand({ CiphertextBlob }));
      const gdk = await expectKmsError(c.BOB.send(new GenerateDataKeyCommand({ KeyId: key.Arn!, KeySpec: 'AES_256' })));
      expect(gdk.message).to.equal(denied(BOB, 'kms:GenerateDataKey', key.Arn!));
      const bad = await expectKmsError(c.BOB.send(new EncryptCommand({ KeyId: key.Arn!, Plaintext: plaintext, GrantTokens: ['not-a-token'] })));
      expect(bad.name).to.equal('InvalidGrantTokenException');

      const retirable = await c.CAROL.send(new ListRetirableGrantsCommand({ RetiringPrincipal: CAROL.principalArn }));
      expect(retirable.Grants!.map((g) => g.GrantId)).to.include(grant.GrantId);
      const notBob = await expectKmsError(c.BOB.send(new RetireGrantCommand({ GrantToken: grant.GrantToken! })));
      expect(notBob.name).to.equal('AccessDeniedException');
      await c.CAROL.send(new RetireGrantCommand({ GrantToken: grant.GrantToken! }));
      const after = await expectKmsError(c.BOB.send(new DecryptCommand({ CiphertextBlob })));
      expect(after.name).to.equal('AccessDeniedException');
    });

    it('encryption-context constraints: Subset and Equals', async () => {
      const subset = await c.ADMIN.send(
        new CreateGrantCommand({ KeyId: key.KeyId!, GranteePrincipal: BOB.principalArn, Operations: ['Encrypt'], Constraints: { EncryptionContextSubset: { tenant: 't1' } } }),
      );
      await c.BOB.send(new EncryptCommand({ KeyId: key.Arn!, Plaintext: plaintext, EncryptionContext: { tenant: 't1', purpose: 'x' } }));
      const err = await expectKmsError(c.BOB.send(new EncryptCommand({ KeyId: key.Arn!, Plaintext: plaintext, EncryptionContext: { tenant: 't2' } })));
      expect(err.message).to.equal(denied(BOB, 'kms:Encrypt', key.Arn!));
      await c.ADMIN.send(new RevokeGrantCommand({ KeyId: key.KeyId!, GrantId: subset.GrantId! }));

      await c.ADMIN.send(
        new CreateGrantCommand({ KeyId: key.KeyId!, GranteePrincipal: BOB.principalArn, Operations: ['Encrypt', 'Decrypt'], Constraints: { EncryptionContextEquals: { tenant: 't1' } } }),
      );
      const { CiphertextBlob } = await c.BOB.send(new EncryptCommand({ KeyId: key.Arn!, Plaintext: plaintext, EncryptionContext: { tenant: 't1' } }));
      await c.BOB.send(new DecryptCommand({ CiphertextBlob, EncryptionContext: { tenant: 't1' } }));
      const more = await expectKmsError(c.BOB.send(new EncryptCommand({ KeyId: key.Arn!, Plaintext: plaintext, EncryptionContext: { tenant: 't1', b: 'c' } })));
      expect(more.name).to.equal('AccessDeniedException');
    });

    it('revoked grants stop working immediately; ListGrants filters and pages', async () => {
      const k = await createKey();
      const ids: string[] = [];
      for (let i = 0; i < 3; i++) {
        const g = await c.ADMIN.send(new CreateGrantCommand({ KeyId: k.KeyId!, GranteePrincipal: i === 0 ? CAROL.principalArn : BOB.principalArn, Operations: ['DescribeKey'] }));
        ids.push(g.GrantId!);
      }
      const page1 = await c.ADMIN.send(new ListGrantsCommand({ KeyId: k.KeyId!, Limit: 2 }));
      expect(page1.Grants).to.have.length(2);
      expect(page1.Truncated).to.equal(true);
      const page2 = await c.ADMIN.send(new ListGrantsCommand({ KeyId: k.KeyId!, Limit: 2, Marker: page1.NextMarker }));
      expect([...page1.Grants!, ...page2.Grants!].map((g) => g.GrantId).sort()).to.deep.equal([...ids].sort());
      const byGrantee = await c.ADMIN.send(new ListGrantsCommand({ KeyId: k.KeyId!, GranteePrincipal: CAROL.principalArn }));
      expect(byGrantee.Grants!.map((g) => g.GrantId)).to.deep.equal([ids[0]]);
      const byId = await c.ADMIN.send(new ListGrantsCommand({ KeyId: k.KeyId!, GrantId: ids[1] }));
      expect(byId.Grants![0]).to.include({ GrantId: ids[1], GranteePrincipal: BOB.principalArn, KeyId: k.Arn, IssuingAccount: `arn:aws:iam::${A}:root` });
      expect(byId.Grants![0].Operations).to.deep.equal(['DescribeKey']);

      await c.CAROL.send(new DescribeKeyCommand({ KeyId: k.Arn! }));
      await c.ADMIN.send(new RevokeGrantCommand({ KeyId: k.KeyId!, GrantId: ids[0] }));
      const err = await expectKmsError(c.CAROL.send(new DescribeKeyCommand({ KeyId: k.Arn! })));
      expect(err.message).to.equal(denied(CAROL, 'kms:DescribeKey', k.Arn!));
      const again = await expectKmsError(c.ADMIN.send(new RevokeGrantCommand({ KeyId: k.KeyId!, GrantId: ids[0] })));
      expect(again.name).to.equal('NotFoundException');
    });

    it('ListGrants continues after a Marker whose grant was revoked meanwhile: the next page is exactly the grants after it', async () => {
      const k = await createKey();
      for (let i = 0; i < 5; i++) await c.ADMIN.send(new CreateGrantCommand({ KeyId: k.KeyId!, GranteePrincipal: BOB.principalArn, Operations: ['DescribeKey'] }));
      const all = (await c.ADMIN.send(new ListGrantsCommand({ KeyId: k.KeyId! }))).Grants!.map((g) => g.GrantId!);
      expect(all).to.have.length(5);

      const page1 = await c.ADMIN.send(new ListGrantsCommand({ KeyId: k.KeyId!, Limit: 2 }));
      expect(page1.Grants!.map((g) => g.GrantId)).to.deep.equal(all.slice(0, 2));
      expect(page1.Truncated).to.equal(true);
      await c.ADMIN.send(new RevokeGrantCommand({ KeyId: k.KeyId!, GrantId: all[1]! }));

      const page2 = await c.ADMIN.send(new ListGrantsCommand({ KeyId: k.KeyId!, Limit: 2, Marker: page1.NextMarker }));
      expect(page2.Grants!.map((g) => g.GrantId)).to.deep.equal(all.slice(2, 4));
      expect(page2.Truncated).to.equal(true);
      const page3 = await c.ADMIN.send(new ListGrantsCommand({ KeyId: k.KeyId!, Limit: 2, Marker: page2.NextMarker }));
      expect(page3.Grants!.map((g) => g.GrantId)).to.deep.equal(all.slice(4));
      expect(page3.Truncated).to.equal(false);
    });

    it('ListGrants: the SDK paginator may revoke every grant it is shown, page by page, until none is left', async () => {
      const k = await createKey();
      const ids: string[] = [];
      for (let i = 0; i < 7; i++) {
        ids.push((await c.ADMIN.send(new CreateGrantCommand({ KeyId: k.KeyId!, GranteePrincipal: BOB.principalArn, Operations: ['DescribeKey'] }))).GrantId!);
      }
      const seen: string[] = [];
      for await (const page of paginateListGrants({ client: c.ADMIN, pageSize: 2 }, { KeyId: k.KeyId! })) {
        for (const grant of page.Grants ?? []) {
          seen.push(grant.GrantId!);
          await c.ADMIN.send(new RevokeGrantCommand({ KeyId: k.KeyId!, GrantId: grant.GrantId! }));
        }
      }
      expect(seen).to.have.length(7);
      expect(seen).to.have.members(ids);
      expect((await c.ADMIN.send(new ListGrantsCommand({ KeyId: k.KeyId! }))).Grants).to.deep.equal([]);
    });

    it('ListGrants pages 50 grants without Limit and at most 100 for a larger Limit, as AWS', async () => {
      const k = await createKey();
      for (let i = 0; i < 101; i++) await c.ADMIN.send(new CreateGrantCommand({ KeyId: k.KeyId!, GranteePrincipal: BOB.principalArn, Operations: ['DescribeKey'] }));
      const byDefault = await c.ADMIN.send(new ListGrantsCommand({ KeyId: k.KeyId! }));
      expect(byDefault.Grants).to.have.length(50);
      expect(byDefault.Truncated).to.equal(true);
      const capped = await c.ADMIN.send(new ListGrantsCommand({ KeyId: k.KeyId!, Limit: 500 }));
      expect(capped.Grants).to.have.length(100);
      expect(capped.Truncated).to.equal(true);
      const rest = await c.ADMIN.send(new ListGrantsCommand({ KeyId: k.KeyId!, Limit: 500, Marker: capped.NextMarker }));
      expect(rest.Grants).to.have.length(1);
      expect(rest.Truncated).to.equal(false);
    });

    it('Name makes CreateGrant idempotent; DryRun creates nothing', async () => {
      const k = await createKey();
      const input = { KeyId: k.KeyId!, GranteePrincipal: BOB.principalArn, Operations: ['Encrypt' as const], Name: 'nightly' };
      const one = await c.ADMIN.send(new CreateGrantCommand(input));
      const two = await c.ADMIN.send(new CreateGrantCommand(input));
      expect(two.GrantId).to.equal(one.GrantId);
      // AWS: a new grant token on every CreateGrant, all usable for the grant.
      expect(two.GrantToken).not.to.equal(one.GrantToken);
      await c.BOB.send(new EncryptCommand({ KeyId: k.Arn!, Plaintext: plaintext, GrantTokens: [two.GrantToken!] }));
      const otherGrantee = await c.ADMIN.send(new CreateGrantCommand({ ...input, GranteePrincipal: CAROL.principalArn }));
      expect(otherGrantee.GrantId).not.to.equal(one.GrantId);
      await c.ADMIN.send(new RevokeGrantCommand({ KeyId: k.KeyId!, GrantId: otherGrantee.GrantId! }));
      const dry = await expectKmsError(c.ADMIN.send(new CreateGrantCommand({ ...input, Name: 'dry', DryRun: true })));
      expect(dry.name).to.equal('DryRunOperationException');
      const listed = await c.ADMIN.send(new ListGrantsCommand({ KeyId: k.KeyId! }));
      expect(listed.Grants!.map((g) => g.Name)).to.deep.equal(['nightly']);
    });

    it('operations must suit the key: no Encrypt on an HMAC key, no constraints on asymmetric keys', async () => {
      const symmetric = await expectKmsError(c.ADMIN.send(new CreateGrantCommand({ KeyId: key.KeyId!, GranteePrincipal: BOB.principalArn, Operations: ['GenerateMac'] })));
      expect(symmetric.name).to.equal('ValidationException');
      const hmac = await createKey({ KeySpec: 'HMAC_256', KeyUsage: 'GENERATE_VERIFY_MAC' });
      const err = await expectKmsError(c.ADMIN.send(new CreateGrantCommand({ KeyId: hmac.KeyId!, GranteePrincipal: BOB.principalArn, Operations: ['Encrypt'] })));
      expect(err.name).to.equal('ValidationException');
      await c.ADMIN.send(new CreateGrantCommand({ KeyId: hmac.KeyId!, GranteePrincipal: BOB.principalArn, Operations: ['GenerateMac', 'VerifyMac'] }));
      const ecc = await createKey({ KeySpec: 'ECC_NIST_P256', KeyUsage: 'SIGN_VERIFY' });
      const constrained = await expectKmsError(
        c.ADMIN.send(new CreateGrantCommand({ KeyId: ecc.KeyId!, GranteePrincipal: BOB.principalArn, Operations: ['Sign'], Constraints: { EncryptionContextSubset: { a: 'b' } } })),
      );
      expect(constrained.name).to.equal('ValidationException');
    });

    it('a grantee with the CreateGrant operation may pass on no more than it holds; RetireGrant by KeyId and GrantId by the issuing account’s root', async () => {
      const k = await createKey();
      const parent = await c.ADMIN.send(new CreateGrantCommand({ KeyId: k.KeyId!, GranteePrincipal: BOB.principalArn, Operations: ['CreateGrant', 'Decrypt', 'RetireGrant'] }));
      const child = await c.BOB.send(new CreateGrantCommand({ KeyId: k.Arn!, GranteePrincipal: CAROL.principalArn, Operations: ['Decrypt'] }));
      const wider = await expectKmsError(c.BOB.send(new CreateGrantCommand({ KeyId: k.Arn!, GranteePrincipal: CAROL.principalArn, Operations: ['Encrypt'] })));
      expect(wider.message).to.equal(denied(BOB, 'kms:CreateGrant', k.Arn!));
      const unknown = await expectKmsError(c.ADMIN.send(new CreateGrantCommand({ KeyId: k.KeyId!, GranteePrincipal: `arn:aws:iam::${B}:user/nobody`, Operations: ['Decrypt'] })));
      // AWS: InvalidArnException for a principal IAM does not know (terraform-provider-aws#3038 retries on it).
      expect([unknown.name, unknown.message]).to.deep.equal(['InvalidArnException', `GranteePrincipal arn:aws:iam::${B}:user/nobody is not a valid principal.`]);
      const malformed = await expectKmsError(c.ADMIN.send(new CreateGrantCommand({ KeyId: k.KeyId!, GranteePrincipal: 'nobody', Operations: ['Decrypt'] })));
      expect(malformed.name).to.equal('ValidationException');
      // The child was issued by account B: the root of A (issuer of the parent) may not retire it.
      const notIssuer = await expectKmsError(c.ROOT_A.send(new RetireGrantCommand({ KeyId: k.Arn!, GrantId: child.GrantId! })));
      expect(notIssuer.message).to.equal(denied(ROOT_A, 'kms:RetireGrant', k.Arn!));
      await c.ROOT_A.send(new RetireGrantCommand({ KeyId: k.Arn!, GrantId: parent.GrantId! }));
      await c.ADMIN.send(new RevokeGrantCommand({ KeyId: k.KeyId!, GrantId: child.GrantId! }));
      expect((await c.ADMIN.send(new ListGrantsCommand({ KeyId: k.KeyId! }))).Grants).to.deep.equal([]);
    });
  });

  describe('as AWS documents them', function () {
    it('RetireGrant: an account named as retiring principal, or the issuing account, delegates through kms:RetireGrant in IAM; an IAM Deny wins', async () => {
      const k = await createKey();
      const toAccountB = await c.ADMIN.send(
        new CreateGrantCommand({ KeyId: k.KeyId!, GranteePrincipal: BOB.principalArn, RetiringPrincipal: `arn:aws:iam::${B}:root`, Operations: ['Decrypt'] }),
      );
      const listed = await c.CAROL.send(new ListRetirableGrantsCommand({ RetiringPrincipal: `arn:aws:iam::${B}:root` }));
      expect(listed.Grants!.map((g) => g.GrantId)).to.deep.equal([toAccountB.GrantId]);
      const otherAccount = await expectKmsError(c.CAROL.send(new ListRetirableGrantsCommand({ RetiringPrincipal: FRANK.principalArn })));
      expect(otherAccount.name).to.equal('AccessDeniedException');
      // carol (account B) has no kms:RetireGrant in her identity policies; grace has.
      const carol = await expectKmsError(c.CAROL.send(new RetireGrantCommand({ GrantToken: toAccountB.GrantToken! })));
      expect(carol.message).to.equal(denied(CAROL, 'kms:RetireGrant', k.Arn!, 'because no identity-based policy allows the kms:RetireGrant action'));
      await c.GRACE.send(new RetireGrantCommand({ GrantToken: toAccountB.GrantToken! }));

      const toFrank = await c.ADMIN.send(
        new CreateGrantCommand({ KeyId: k.KeyId!, GranteePrincipal: APP.principalArn, RetiringPrincipal: FRANK.principalArn, Operations: ['Decrypt', 'RetireGrant'] }),
      );
      const frank = await expectKmsError(c.FRANK.send(new RetireGrantCommand({ KeyId: k.Arn!, GrantId: toFrank.GrantId! })));
      expect(frank.message).to.equal(denied(FRANK, 'kms:RetireGrant', k.Arn!, 'with an explicit deny in an identity-based policy'));
      // The issuing account (A): dave has no identity policy, the administrator's allows kms:*.
      const dave = await expectKmsError(c.DAVE.send(new RetireGrantCommand({ KeyId: k.Arn!, GrantId: toFrank.GrantId! })));
      expect(dave.message).to.equal(denied(DAVE, 'kms:RetireGrant', k.Arn!, 'because no identity-based policy allows the kms:RetireGrant action'));
      await c.ADMIN.send(new RetireGrantCommand({ KeyId: k.Arn!, GrantId: toFrank.GrantId! }));
      expect((await c.ADMIN.send(new ListGrantsCommand({ KeyId: k.KeyId! }))).Grants).to.deep.equal([]);
    });

    it('CreateGrant: both constraint members, even one an empty map, are "More than one constraint supplied", as AWS answers', async () => {
      const k = await createKey();
      const grant = (Constraints: Record<string, Record<string, string>>) =>
        c.ADMIN.send(new CreateGrantCommand({ KeyId: k.KeyId!, GranteePrincipal: BOB.principalArn, Operations: ['Decrypt'], Constraints }));
      // aws/aws-sdk-java#328: AWS refused a Subset with an empty Equals beside it.
      const both: Array<Record<string, Record<string, string>>> = [
        { EncryptionContextSubset: { a: '1' }, EncryptionContextEquals: {} },
        { EncryptionContextSubset: { a: '1' }, EncryptionContextEquals: { a: '1' } },
      ];
      for (const constraints of both) {
        const err = await expectKmsError(grant(constraints));
        expect([err.name, err.message, err.$metadata?.httpStatusCode]).to.deep.equal(['ValidationException', 'More than one constraint supplied', 400]);
      }
      expect((await c.ADMIN.send(new ListGrantsCommand({ KeyId: k.KeyId! }))).Grants).to.deep.equal([]);
    });

    it('CreateGrant with a Name: a retry that sends the same encryption-context pairs in another order gets the same grant (API reference, CreateGrant Name)', async () => {
      const k = await createKey();
      const grant = (Constraints: Record<string, Record<string, string>>, Name: string) =>
        c.ADMIN.send(new CreateGrantCommand({ KeyId: k.KeyId!, GranteePrincipal: BOB.principalArn, Operations: ['Decrypt'], Constraints, Name }));
      const first = await grant({ EncryptionContextSubset: { tenant: 't1', stage: 'prod' } }, 'nightly');
      const retried = await grant({ EncryptionContextSubset: { stage: 'prod', tenant: 't1' } }, 'nightly');
      expect(retried.GrantId).to.equal(first.GrantId);
      const other = await grant({ EncryptionContextSubset: { stage: 'prod', tenant: 't2' } }, 'nightly');
      expect(other.GrantId).not.to.equal(first.GrantId);
      expect((await c.ADMIN.send(new ListGrantsCommand({ KeyId: k.KeyId! }))).Grants).to.have.length(2);
    });

    it('ListGrants: a GrantId filter that is no grant id is InvalidGrantIdException, as RevokeGrant answers; a well-formed unknown one lists nothing', async () => {
      const k = await createKey();
      await c.ADMIN.send(new CreateGrantCommand({ KeyId: k.KeyId!, GranteePrincipal: BOB.principalArn, Operations: ['DescribeKey'] }));
      const malformed = await expectKmsError(c.ADMIN.send(new ListGrantsCommand({ KeyId: k.KeyId!, GrantId: 'not-a-grant-id' })));
      expect([malformed.name, malformed.message]).to.deep.equal(['InvalidGrantIdException', 'Invalid grant ID: not-a-grant-id']);
      const revoke = await expectKmsError(c.ADMIN.send(new RevokeGrantCommand({ KeyId: k.KeyId!, GrantId: 'not-a-grant-id' })));
      expect(revoke.name).to.equal('InvalidGrantIdException');
      expect((await c.ADMIN.send(new ListGrantsCommand({ KeyId: k.KeyId!, GrantId: 'a'.repeat(64) }))).Grants).to.deep.equal([]);
    });

    it('encryption-context constraints: keys case-insensitive, values case-sensitive; GenerateDataKeyPair and both halves of ReEncrypt; not DescribeKey', async () => {
      const k = await createKey();
      await c.ADMIN.send(
        new CreateGrantCommand({
          KeyId: k.KeyId!,
          GranteePrincipal: BOB.principalArn,
          Operations: ['Encrypt', 'GenerateDataKeyPair', 'ReEncryptFrom', 'ReEncryptTo', 'DescribeKey'],
          Constraints: { EncryptionContextEquals: { Tenant: 't1' } },
        }),
      );
      const { CiphertextBlob } = await c.BOB.send(new EncryptCommand({ KeyId: k.Arn!, Plaintext: plaintext, EncryptionContext: { tenant: 't1' } }));
      const value = await expectKmsError(c.BOB.send(new EncryptCommand({ KeyId: k.Arn!, Plaintext: plaintext, EncryptionContext: { Tenant: 'T1' } })));
      expect(value.message).to.equal(denied(BOB, 'kms:Encrypt', k.Arn!));
      await c.BOB.send(new GenerateDataKeyPairCommand({ KeyId: k.Arn!, KeyPairSpec: 'ECC_NIST_P256', EncryptionContext: { TENANT: 't1' } }));
      const pair = await expectKmsError(c.BOB.send(new GenerateDataKeyPairCommand({ KeyId: k.Arn!, KeyPairSpec: 'ECC_NIST_P256' })));
      expect(pair.message).to.equal(denied(BOB, 'kms:GenerateDataKeyPair', k.Arn!));
      const reEncrypt = (destination: Record<string, string>) =>
        c.BOB.send(new ReEncryptCommand({ CiphertextBlob, SourceEncryptionContext: { tenant: 't1' }, DestinationKeyId: k.Arn!, DestinationEncryptionContext: destination }));
      await reEncrypt({ Tenant: 't1' });
      const to = await expectKmsError(reEncrypt({ Tenant: 't2' }));
      expect(to.message).to.equal(denied(BOB, 'kms:ReEncryptTo', k.Arn!));
      await c.BOB.send(new DescribeKeyCommand({ KeyId: k.Arn! }));
    });

    it('key policies: NotAction and NotResource, ForAnyValue and IfExists, kms:GrantOperations and kms:GrantIsForAWSResource; a Deny wins over a grant', async () => {
      const k = await createKey({
        Policy: policy(
          adminStatement,
          {
            Principal: { AWS: BOB.principalArn },
            Action: 'kms:Encrypt',
            Condition: { 'ForAnyValue:StringEquals': { 'kms:EncryptionContextKeys': ['project', 'team'] }, StringEqualsIfExists: { 'kms:EncryptionContext:stage': 'prod' } },
          },
          {
            Principal: { AWS: BOB.principalArn },
            Action: 'kms:CreateGrant',
            Condition: { 'ForAllValues:StringEquals': { 'kms:GrantOperations': ['Encrypt', 'DescribeKey'] }, Bool: { 'kms:GrantIsForAWSResource': 'false' } },
          },
          { Effect: 'Deny', Principal: { AWS: BOB.principalArn }, NotAction: ['kms:Encrypt', 'kms:CreateGrant', 'kms:Describe*'] },
          { Principal: { AWS: CAROL.principalArn }, Action: 'kms:DescribeKey', Resource: undefined, NotResource: `arn:aws:kms:*:${A}:key/not-this-one` },
          { Principal: { AWS: DAVE.principalArn }, Action: ['kms:ListGrants', 'kms:RevokeGrant'], Condition: { Bool: { 'kms:GrantIsForAWSResource': 'false' } } },
        ),
      });
      const encrypt = (context?: Record<string, string>) => c.BOB.send(new EncryptCommand({ KeyId: k.Arn!, Plaintext: plaintext, EncryptionContext: context }));
      const { CiphertextBlob } = await encrypt({ project: 'x' });
      for (const context of [{ project: 'x', stage: 'dev' }, { other: 'x' }, undefined] as Array<Record<string, string> | undefined>) {
        expect((await expectKmsError(encrypt(context))).message).to.equal(denied(BOB, 'kms:Encrypt', k.Arn!));
      }
      await c.BOB.send(new CreateGrantCommand({ KeyId: k.Arn!, GranteePrincipal: CAROL.principalArn, Operations: ['Encrypt'] }));
      const wider = await expectKmsError(c.BOB.send(new CreateGrantCommand({ KeyId: k.Arn!, GranteePrincipal: CAROL.principalArn, Operations: ['Encrypt', 'Decrypt'] })));
      expect(wider.message).to.equal(denied(BOB, 'kms:CreateGrant', k.Arn!));
      await c.ADMIN.send(new CreateGrantCommand({ KeyId: k.KeyId!, GranteePrincipal: BOB.principalArn, Operations: ['Decrypt'] }));
      const decrypt = await expectKmsError(c.BOB.send(new DecryptCommand({ CiphertextBlob, KeyId: k.Arn!, EncryptionContext: { project: 'x' } })));
      expect(decrypt.message).to.equal(denied(BOB, 'kms:Decrypt', k.Arn!, 'with an explicit deny in a resource-based policy'));
      await c.CAROL.send(new DescribeKeyCommand({ KeyId: k.Arn! }));
      // kms:GrantIsForAWSResource is false (present) on ListGrants and RevokeGrant too.
      const { Grants } = await c.DAVE.send(new ListGrantsCommand({ KeyId: k.KeyId! }));
      await c.DAVE.send(new RevokeGrantCommand({ KeyId: k.KeyId!, GrantId: Grants![0].GrantId! }));
    });
  });
});
