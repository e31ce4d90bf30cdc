import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { CreateAliasCommand, CreateKeyCommand, DeleteAliasCommand, DescribeKeyCommand, EncryptCommand, GenerateRandomCommand, type KMSClient, ListKeysCommand, UpdateAliasCommand } from '@aws-sdk/client-kms';
import { expect } from 'chai';
import { administrators, expectKmsError, serverPerSuite, type TestServer } from '../support/server';
import { A, ADMIN, adminStatement, DAVE, denied, type Principal, policy, rootStatement } from '../support/strict-principals';

/**
 * Global and KMS condition keys whose presence depends on who signs and on the kind of policy:
 * aws:MultiFactorAuthPresent (temporary credentials), aws:ResourceAccount (actions on no key)
 * and kms:ResourceAliases (IAM policies only), through real SDK clients in strict mode.
 */

/** Temporary credentials of an assumed-role session (listed with their session token). */
const SESSION = {
  accessKeyId: 'ASIASESSION00000007',
  secretAccessKey: 'session-secret',
  sessionToken: 'FwoGZXIvYXdzEXAMPLEcontextkeys',
  accountId: A,
  principalArn: `arn:aws:sts::${A}:assumed-role/app/session-7`,
};
/** Identity policy: account-level actions only where aws:ResourceAccount is its own account. */
const OWNER: Principal = { accessKeyId: 'AKIAOWNER0000000001', secretAccessKey: 'owner-secret', accountId: A, principalArn: `arn:aws:iam::${A}:user/owner` };
/** Identity policy: the same actions under aws:ResourceAccount of another account. */
const STRANGER: Principal = { accessKeyId: 'AKIASTRANGER0000001', secretAccessKey: 'stranger-secret', accountId: A, principalArn: `arn:aws:iam::${A}:user/stranger` };
/** Identity policy: Encrypt with keys that have the alias alias/finance-key (kms:ResourceAliases). */
const FINANCE: Principal = { accessKeyId: 'AKIAFINANCE00000001', secretAccessKey: 'finance-secret', accountId: A, principalArn: `arn:aws:iam::${A}:user/finance` };

const ACCOUNT_ACTIONS = ['kms:CreateKey', 'kms:ListKeys', 'kms:GenerateRandom'];

function writeCredentials(): string {
  const file = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'p11kms-context-keys-')), 'credentials.json');
  const identityPolicies = {
    ...administrators(ADMIN.principalArn, SESSION.principalArn, DAVE.principalArn),
    [OWNER.principalArn]: { Version: '2012-10-17', Statement: [{ Effect: 'Allow', Action: ACCOUNT_ACTIONS, Resource: '*', Condition: { StringEquals: { 'aws:ResourceAccount': A } } }] },
    [STRANGER.principalArn]: { Version: '2012-10-17', Statement: [{ Effect: 'Allow', Action: ACCOUNT_ACTIONS, Resource: '*', Condition: { StringEquals: { 'aws:ResourceAccount': '999999999999' } } }] },
    [FINANCE.principalArn]: {
      Version: '2012-10-17',
      Statement: [{ Effect: 'Allow', Action: 'kms:Encrypt', Resource: `arn:aws:kms:*:${A}:key/*`, Condition: { 'ForAnyValue:StringEquals': { 'kms:ResourceAliases': 'alias/finance-key' } } }],
    },
  };
  fs.writeFileSync(file, JSON.stringify({ accessKeys: [ADMIN, DAVE, SESSION, OWNER, STRANGER, FINANCE], identityPolicies }));
  return file;
}

describe('request context keys: temporary credentials, actions on no key, IAM-only keys (strict mode)', function () {
  let server: TestServer;
  let admin: KMSClient;
  serverPerSuite(() => ({ auth: 'strict', credentialsFile: writeCredentials() }), (started) => {
    server = started;
    admin = server.client(ADMIN);
  });

  const keyWith = async (...statements: Record<string, unknown>[]) => {
    const { KeyMetadata } = await admin.send(new CreateKeyCommand({ Policy: policy(adminStatement, ...statements) }));
    return KeyMetadata!;
  };

  it('aws:MultiFactorAuthPresent is false for temporary credentials and absent for an access key, as IAM documents', async () => {
    // IAM's "NOT RECOMMENDED" statement: it denies temporary credentials without MFA, and does
    // not deny requests made with long-term credentials (the key is absent for them).
    const session = server.client(SESSION);
    const dave = server.client(DAVE);
    const key = await keyWith(
      { Sid: 'use', Principal: { AWS: [SESSION.principalArn, DAVE.principalArn] }, Action: 'kms:*' },
      { Sid: 'mfa', Effect: 'Deny', Principal: { AWS: '*' }, Action: 'kms:Encrypt', Condition: { Bool: { 'aws:MultiFactorAuthPresent': 'false' } } },
      { Sid: 'no-mfa-key', Effect: 'Deny', Principal: { AWS: '*' }, Action: 'kms:DescribeKey', Condition: { Null: { 'aws:MultiFactorAuthPresent': 'false' } } },
    );
    const err = await expectKmsError(session.send(new EncryptCommand({ KeyId: key.KeyId!, Plaintext: Buffer.from('x') })));
    expect(err.name).to.equal('AccessDeniedException');
    expect(err.message).to.equal(denied(SESSION, 'kms:Encrypt', key.Arn!, 'with an explicit deny in a resource-based policy'));
    await dave.send(new EncryptCommand({ KeyId: key.KeyId!, Plaintext: Buffer.from('x') }));
    // Null false: the key exists for the session only.
    expect((await expectKmsError(session.send(new DescribeKeyCommand({ KeyId: key.KeyId! })))).name).to.equal('AccessDeniedException');
    await dave.send(new DescribeKeyCommand({ KeyId: key.KeyId! }));
  });

  it('aws:ResourceAccount is the caller’s account for actions on no key (CreateKey, ListKeys, GenerateRandom)', async () => {
    // IAM: "always included in the request context for most service actions" (KMS is not an exception).
    const owner = server.client(OWNER);
    await owner.send(new CreateKeyCommand({}));
    await owner.send(new ListKeysCommand({}));
    await owner.send(new GenerateRandomCommand({ NumberOfBytes: 16 }));
    const stranger = server.client(STRANGER);
    for (const [action, call] of [
      ['kms:CreateKey', stranger.send(new CreateKeyCommand({}))],
      ['kms:ListKeys', stranger.send(new ListKeysCommand({}))],
      ['kms:GenerateRandom', stranger.send(new GenerateRandomCommand({ NumberOfBytes: 16 }))],
    ] as const) {
      const err = await expectKmsError(call);
      expect(err.name, action).to.equal('AccessDeniedException');
      expect(err.message).to.equal(denied(STRANGER, action, '*', `because no identity-based policy allows the ${action} action`));
    }
  });

  it('kms:ResourceAliases is evaluated in IAM policies only: a key policy condition on it never holds', async () => {
    const finance = server.client(FINANCE);
    const key = await keyWith(
      rootStatement,
      { Sid: 'alias-deny', Effect: 'Deny', Principal: { AWS: '*' }, Action: 'kms:Encrypt', Condition: { 'ForAnyValue:StringEquals': { 'kms:ResourceAliases': 'alias/finance-key' } } },
    );
    await admin.send(new CreateAliasCommand({ AliasName: 'alias/finance-key', TargetKeyId: key.KeyId! }));
    // The identity policy's condition sees the alias (AWS's AliasBasedIAMPolicy example), and the
    // key policy's Deny on the same condition does not apply.
    await finance.send(new EncryptCommand({ KeyId: key.KeyId!, Plaintext: Buffer.from('x') }));
    // The condition follows the alias: moved to another key, it allows that key and no longer this one.
    const other = await keyWith(rootStatement);
    await admin.send(new UpdateAliasCommand({ AliasName: 'alias/finance-key', TargetKeyId: other.KeyId! }));
    const err = await expectKmsError(finance.send(new EncryptCommand({ KeyId: key.KeyId!, Plaintext: Buffer.from('x') })));
    expect(err.name).to.equal('AccessDeniedException');
    await finance.send(new EncryptCommand({ KeyId: other.KeyId!, Plaintext: Buffer.from('x') }));
    await admin.send(new DeleteAliasCommand({ AliasName: 'alias/finance-key' }));
    expect((await expectKmsError(finance.send(new EncryptCommand({ KeyId: other.KeyId!, Plaintext: Buffer.from('x') })))).name).to.equal('AccessDeniedException');
  });

  it('kms:ResourceAliases in a key policy Allow gives nothing by itself', async () => {
    // Without delegation to the account, the alias condition is the only way in, and it fails.
    const finance = server.client(FINANCE);
    const key = await keyWith({ Sid: 'alias-abac', Principal: { AWS: FINANCE.principalArn }, Action: 'kms:Encrypt', Condition: { 'ForAnyValue:StringEquals': { 'kms:ResourceAliases': 'alias/budget-key' } } });
    await admin.send(new CreateAliasCommand({ AliasName: 'alias/budget-key', TargetKeyId: key.KeyId! }));
    const err = await expectKmsError(finance.send(new EncryptCommand({ KeyId: key.KeyId!, Plaintext: Buffer.from('x') })));
    expect(err.name).to.equal('AccessDeniedException');
    expect(err.message).to.equal(denied(FINANCE, 'kms:Encrypt', key.Arn!));
  });
});
