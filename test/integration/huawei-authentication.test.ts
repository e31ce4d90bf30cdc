import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { expect } from 'chai';
import { administrators, serverPerSuite, type TestServer } from '../support/server';
import { expectHuaweiError as expectError, huaweiRequestAs as hw, PROJECT, sdkDate, signSdkHmacSha256 as sign } from '../support/huawei-client';

/** The Huawei Cloud / OTC dialect under strict authentication (tokens and AK/SK signatures) and configured projects. */

describe('Huawei Cloud / OTC dialect: strict authentication and project mapping', function () {
  this.timeout(30_000);
  let server: TestServer;
  let dir: string;
  const ALICE = { ak: 'HWALICEAK', sk: 'alice-secret-key' };
  const BOB_PROJECT = 'bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb';

  serverPerSuite(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'p11kms-hw-'));
    const credentialsFile = path.join(dir, 'credentials.json');
    fs.writeFileSync(
      credentialsFile,
      JSON.stringify({
        accessKeys: [{ accessKeyId: ALICE.ak, secretAccessKey: ALICE.sk, accountId: '111122223333' }],
        authTokens: [
          { token: 'alice-token', accountId: '111122223333', principalArn: 'arn:aws:iam::111122223333:user/alice' },
          { token: 'bob-token', accountId: '444455556666' },
        ],
        identityPolicies: administrators('arn:aws:iam::111122223333:user/alice'),
      }),
    );
    return {
      auth: 'strict',
      credentialsFile,
      env: { P11KMS_HUAWEI_PROJECTS: `${BOB_PROJECT}=eu-nl:444455556666`, P11KMS_HUAWEI_DEFAULT_REGION: 'eu-de' },
    };
  }, (started) => (server = started));
  after(() => fs.rmSync(dir, { recursive: true, force: true }));

  it('accepts a listed X-Auth-Token and refuses an unknown one (401 KMS.0302)', async () => {
    const ok = await hw(server, 'create-key', { key_alias: 'strict-token' }, { token: 'alice-token' });
    expect(ok.status, JSON.stringify(ok.body)).to.equal(200);
    expect(ok.body.key_info.domain_id).to.equal('111122223333');
    expectError(await hw(server, 'list-keys', {}, { token: 'who-knows' }), 401, 'KMS.0302');
    expectError(await hw(server, 'list-keys', {}, { none: true }), 403, 'KMS.0301');
  });

  it('accepts an SDK-HMAC-SHA256 signature and refuses a wrong secret, an altered body, an unknown AK and a stale date', async () => {
    const ok = await hw(server, 'encrypt-data', { key_id: 'alias/strict-token', plain_text: 'signed' }, ALICE);
    expect(ok.status, JSON.stringify(ok.body)).to.equal(200);
    const dec = await hw(server, 'decrypt-data', { cipher_text: ok.body.cipher_text }, ALICE);
    expect(dec.body.plain_text).to.equal('signed');

    expectError(await hw(server, 'list-keys', {}, { ak: ALICE.ak, sk: 'wrong' }), 401, 'APIGW.0301');
    expectError(await hw(server, 'list-keys', {}, { ak: 'UNKNOWNAK', sk: 'x' }), 401, 'APIGW.0301');
    const altered = await hw(server, 'list-keys', { limit: '1' }, { ...ALICE, tamper: () => JSON.stringify({ limit: '2' }) });
    expectError(altered, 401, 'APIGW.0301');
    const stale = await hw(server, 'list-keys', {}, {
      ...ALICE,
      tamper: (h, body) => {
        h['X-Sdk-Date'] = sdkDate(-20 * 60_000);
        delete h.Authorization;
        sign('POST', new URL(`${server.endpoint}/v1.0/${PROJECT}/kms/list-keys`), h, body, ALICE.ak, ALICE.sk);
        return body;
      },
    });
    expectError(stale, 401, 'APIGW.0301');
    const badHeader = await hw(server, 'list-keys', {}, {
      ...ALICE,
      tamper: (h, body) => {
        h.Authorization = 'SDK-HMAC-SHA256 Access=HWALICEAK';
        return body;
      },
    });
    expectError(badHeader, 401, 'APIGW.0301');
  });

  it('maps a configured project to its account and region; a caller of another account is refused (403 KMS.0305)', async () => {
    const bob = { token: 'bob-token' };
    const created = await hw(server, 'create-key', { key_alias: 'bob-key' }, bob, BOB_PROJECT);
    expect(created.status, JSON.stringify(created.body)).to.equal(200);
    expect(created.body.key_info.domain_id).to.equal('444455556666');
    const info = (await hw(server, 'describe-key', { key_id: 'alias/bob-key' }, bob, BOB_PROJECT)).body.key_info;
    expect(info).to.include({ realm: 'eu-nl', domain_id: '444455556666' });
    // The AWS dialect sees bob's key in eu-nl only through bob's account (not configured here for SigV4).
    expectError(await hw(server, 'list-keys', {}, { token: 'alice-token' }, BOB_PROJECT), 403, 'KMS.0305');
    expectError(await hw(server, 'list-keys', {}, bob, PROJECT), 403, 'KMS.0305');
    const aliceKeys = (await hw(server, 'list-keys', {}, { token: 'alice-token' })).body.keys as string[];
    expect(aliceKeys).not.to.include(created.body.key_info.key_id);
  });
});
