import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import {
  CreateGrantCommand,
  CreateKeyCommand,
  DescribeCustomKeyStoresCommand,
  ScheduleKeyDeletionCommand,
  GenerateDataKeyCommand,
  GenerateDataKeyPairCommand,
  GenerateDataKeyPairWithoutPlaintextCommand,
  GenerateDataKeyWithoutPlaintextCommand,
  EnableKeyRotationCommand,
  GetKeyRotationStatusCommand,
  type GrantConstraints,
  type KMSClient,
  ListAliasesCommand,
} from '@aws-sdk/client-kms';
import { expect } from 'chai';
import { administrators, expectKmsError, serverPerSuite, type TestServer } from '../support/server';
import { A, ADMIN, adminStatement, BOB, DAVE, denied, type Principal, policy } from '../support/strict-principals';

/**
 * KMS condition keys that AWS evaluates for particular operations (KMS developer guide, "AWS KMS
 * condition keys"), through real SDK clients against a strict-mode server: each case is a policy
 * from or after the guide that must decide the way AWS does.
 */

/**
 * Identity policy: CreateKey of multi-Region primary keys only (kms:MultiRegionKeyType), and two
 * account-level actions under a kms:CallerAccount condition.
 */
const MAKER: Principal = { accessKeyId: 'AKIAMAKER0000000001', secretAccessKey: 'AKIAMAKER0000000001-secret', accountId: A, principalArn: `arn:aws:iam::${A}:user/maker` };

function writeCredentials(): string {
  const file = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'p11kms-conditions-')), 'credentials.json');
  const identityPolicies = {
    ...administrators(ADMIN.principalArn, BOB.principalArn),
    [MAKER.principalArn]: {
      Version: '2012-10-17',
      Statement: [
        { Effect: 'Allow', Action: 'kms:CreateKey', Resource: '*', Condition: { StringEquals: { 'kms:MultiRegionKeyType': 'PRIMARY' } } },
        { Effect: 'Allow', Action: ['kms:ListAliases', 'kms:DescribeCustomKeyStores'], Resource: '*', Condition: { StringEquals: { 'kms:CallerAccount': A } } },
      ],
    },
  };
  fs.writeFileSync(file, JSON.stringify({ accessKeys: [ADMIN, BOB, DAVE, MAKER], identityPolicies }));
  return file;
}

describe('condition keys per operation (strict mode)', function () {
  let server: TestServer;
  let admin: KMSClient;
  let dave: KMSClient;
  let maker: KMSClient;
  serverPerSuite(() => ({ auth: 'strict', credentialsFile: writeCredentials() }), (started) => {
    server = started;
    [admin, dave, maker] = [ADMIN, DAVE, MAKER].map((who) => server.client(who));
  });

  const keyWith = async (...statements: Record<string, unknown>[]) => {
    const { KeyMetadata } = await admin.send(new CreateKeyCommand({ Policy: policy(adminStatement, ...statements) }));
    return KeyMetadata!;
  };
  const forDave = (statement: Record<string, unknown>) => ({ Principal: { AWS: DAVE.principalArn }, ...statement });

  it('kms:EncryptionAlgorithm is SYMMETRIC_DEFAULT for the data key operations, so AWS’s “only symmetric” Deny does not stop them', async () => {
    // The guide's AllowOnlySymmetricAlgorithm statement: "The condition has no effect on these
    // operations because they always use a symmetric encryption algorithm."
    const key = await keyWith(
      forDave({ Sid: 'use', Action: 'kms:*' }),
      forDave({
        Sid: 'AllowOnlySymmetricAlgorithm',
        Effect: 'Deny',
        Action: ['kms:Encrypt', 'kms:Decrypt', 'kms:ReEncrypt*', 'kms:GenerateDataKey*'],
        Condition: { StringNotEquals: { 'kms:EncryptionAlgorithm': 'SYMMETRIC_DEFAULT' } },
      }),
    );
    await dave.send(new GenerateDataKeyCommand({ KeyId: key.KeyId!, KeySpec: 'AES_256' }));
    await dave.send(new GenerateDataKeyWithoutPlaintextCommand({ KeyId: key.KeyId!, KeySpec: 'AES_256' }));
    await dave.send(new GenerateDataKeyPairCommand({ KeyId: key.KeyId!, KeyPairSpec: 'ECC_NIST_P256' }));
    await dave.send(new GenerateDataKeyPairWithoutPlaintextCommand({ KeyId: key.KeyId!, KeyPairSpec: 'ECC_NIST_P256' }));
    // An algorithm other than SYMMETRIC_DEFAULT is still refused for data keys.
    const other = await keyWith(forDave({ Action: 'kms:GenerateDataKey', Condition: { StringEquals: { 'kms:EncryptionAlgorithm': 'RSAES_OAEP_SHA_256' } } }));
    const err = await expectKmsError(dave.send(new GenerateDataKeyCommand({ KeyId: other.KeyId!, KeySpec: 'AES_256' })));
    expect(err.name).to.equal('AccessDeniedException');
    expect(err.message).to.equal(denied(DAVE, 'kms:GenerateDataKey', other.Arn!));
  });

  it('kms:MultiRegionKeyType is PRIMARY in a CreateKey request for a multi-Region key, absent for a single-Region one', async () => {
    const ownPolicy = policy(adminStatement, { Sid: 'maker', Principal: { AWS: MAKER.principalArn }, Action: 'kms:*' });
    const { KeyMetadata } = await maker.send(new CreateKeyCommand({ MultiRegion: true, Policy: ownPolicy }));
    expect(KeyMetadata!.MultiRegionConfiguration!.MultiRegionKeyType).to.equal('PRIMARY');
    const err = await expectKmsError(maker.send(new CreateKeyCommand({ Policy: ownPolicy })));
    expect(err.name).to.equal('AccessDeniedException');
    expect(err.message).to.equal(`User: ${MAKER.principalArn} is not authorized to perform: kms:CreateKey on resource: * because no identity-based policy allows the kms:CreateKey action`);
  });

  it('kms:EncryptionContext:<key> and kms:EncryptionContextKeys in CreateGrant are the grant constraint’s encryption context', async () => {
    const key = await keyWith(
      forDave({
        Action: 'kms:CreateGrant',
        Condition: { StringEquals: { 'kms:EncryptionContext:tenant': 't1' }, 'ForAllValues:StringEquals': { 'kms:EncryptionContextKeys': ['tenant'] } },
      }),
    );
    const grant = (Constraints?: GrantConstraints) =>
      dave.send(new CreateGrantCommand({ KeyId: key.KeyId!, GranteePrincipal: BOB.principalArn, Operations: ['Encrypt'], Constraints }));
    await grant({ EncryptionContextSubset: { tenant: 't1' } });
    await grant({ EncryptionContextEquals: { tenant: 't1' } });
    const refused: (GrantConstraints | undefined)[] = [undefined, { EncryptionContextSubset: { tenant: 't2' } }, { EncryptionContextEquals: { tenant: 't1', extra: 'x' } }];
    for (const constraints of refused) {
      const err = await expectKmsError(grant(constraints));
      expect(err.name, JSON.stringify(constraints)).to.equal('AccessDeniedException');
      expect(err.message).to.equal(denied(DAVE, 'kms:CreateGrant', key.Arn!));
    }
  });

  // Developer guide, "Conditions for an API operation request": such a condition "works even when
  // the parameter doesn't appear in the request, such as when you use the parameter's default value".
  it('kms:RotationPeriodInDays and kms:ScheduleKeyDeletionPendingWindowInDays are the defaults (365, 30) when the request leaves them out', async () => {
    const capped = await keyWith({ Effect: 'Deny', Principal: '*', Action: 'kms:EnableKeyRotation', Condition: { NumericGreaterThan: { 'kms:RotationPeriodInDays': '180' } } });
    const over = await expectKmsError(admin.send(new EnableKeyRotationCommand({ KeyId: capped.KeyId })));
    expect([over.name, over.message]).to.deep.equal(['AccessDeniedException', denied(ADMIN, 'kms:EnableKeyRotation', capped.Arn!, 'with an explicit deny in a resource-based policy')]);
    expect((await admin.send(new GetKeyRotationStatusCommand({ KeyId: capped.KeyId }))).KeyRotationEnabled).to.equal(false);
    await admin.send(new EnableKeyRotationCommand({ KeyId: capped.KeyId, RotationPeriodInDays: 90 }));

    const thirtyOnly = await keyWith(forDave({ Effect: 'Allow', Action: 'kms:ScheduleKeyDeletion', Resource: '*', Condition: { NumericEquals: { 'kms:ScheduleKeyDeletionPendingWindowInDays': '30' } } }));
    const short = await expectKmsError(dave.send(new ScheduleKeyDeletionCommand({ KeyId: thirtyOnly.KeyId, PendingWindowInDays: 7 })));
    expect(short.name).to.equal('AccessDeniedException');
    const scheduled = await dave.send(new ScheduleKeyDeletionCommand({ KeyId: thirtyOnly.KeyId }));
    expect([scheduled.KeyState, scheduled.PendingWindowInDays]).to.deep.equal(['PendingDeletion', 30]);
  });

  it('kms:CallerAccount exists for key and custom key store operations only, as AWS lists them (not ListAliases)', async () => {
    await maker.send(new DescribeCustomKeyStoresCommand({}));
    const err = await expectKmsError(maker.send(new ListAliasesCommand({})));
    expect(err.name).to.equal('AccessDeniedException');
    expect(err.message).to.equal(`User: ${MAKER.principalArn} is not authorized to perform: kms:ListAliases on resource: * because no identity-based policy allows the kms:ListAliases action`);
  });
});
