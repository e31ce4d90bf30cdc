import {
  CreateGrantCommand,
  CreateKeyCommand,
  DecryptCommand,
  DescribeKeyCommand,
  EnableKeyRotationCommand,
  EncryptCommand,
  GetKeyRotationStatusCommand,
  type KMSClient,
  ListGrantsCommand,
  ListResourceTagsCommand,
  RotateKeyOnDemandCommand,
  TagResourceCommand,
} from '@aws-sdk/client-kms';
import { constants, createPublicKey, publicEncrypt, randomBytes } from 'node:crypto';
import { expect } from 'chai';
import { expectHuaweiError as expectError, huaweiClient, PROJECT, type Row } from '../support/huawei-client';
import { serverPerSuite, type TestServer } from '../support/server';

/**
 * Key tags, rotation, grants and import through the Huawei Cloud / OTC dialect, over HTTP against
 * the real server and token, each checked against the AWS dialect on the same keys (the project
 * is mapped to the AWS region and account the SDK client uses).
 */

const REGION = 'us-east-1';
const ACCOUNT = '111122223333';
const MISSING_KEY = '00000000-0000-4000-8000-000000000000';

describe('Huawei dialect: key tags, rotation, grants, import', function () {
  this.timeout(30_000);
  let server: TestServer;
  let kms: KMSClient;

  serverPerSuite({ env: { P11KMS_HUAWEI_PROJECTS: `${PROJECT}=${REGION}:${ACCOUNT}` } }, (started, client) => ([server, kms] = [started, client]));

  const { request, hw, newKey } = huaweiClient(() => server.endpoint);

  describe('key tags', () => {
    it('create, batch create, list, delete and batch delete tags; AWS sees them and Huawei sees AWS tags', async () => {
      const keyId = await newKey('hw-tags');
      const created = await request('POST', `${keyId}/tags`, { tag: { key: 'DEV', value: 'DEV1' }, sequence: '919c82d4-8046-4722-9094-35c3c6524cff' });
      expect(created.status, created.raw).to.equal(204);
      expect(created.raw).to.equal('');
      const batch = await request('POST', `${keyId}/tags/action`, { action: 'create', tags: [{ key: 'key1', value: 'value1' }, { key: 'key', value: 'value3' }] });
      expect(batch.status, batch.raw).to.equal(204);

      const { Tags } = await kms.send(new ListResourceTagsCommand({ KeyId: keyId }));
      expect(Tags).to.deep.equal([
        { TagKey: 'DEV', TagValue: 'DEV1' },
        { TagKey: 'key', TagValue: 'value3' },
        { TagKey: 'key1', TagValue: 'value1' },
      ]);
      await kms.send(new TagResourceCommand({ KeyId: keyId, Tags: [{ TagKey: 'from-aws', TagValue: 'yes' }] }));

      const listed = await request('GET', `${keyId}/tags`);
      expect(listed.status, listed.raw).to.equal(200);
      expect(listed.body.existTagsNum).to.equal(4);
      expect(listed.body.tags).to.deep.include({ key: 'from-aws', value: 'yes' });

      expect((await request('DELETE', `${keyId}/tags/DEV`)).status).to.equal(204);
      const deleted = await request('POST', `${keyId}/tags/action`, { action: 'delete', tags: [{ key: 'key1', value: 'value1' }, { key: 'from-aws', value: 'yes' }] });
      expect(deleted.status, deleted.raw).to.equal(204);
      expect((await request('GET', `${keyId}/tags`)).body).to.deep.equal({ tags: [{ key: 'key', value: 'value3' }], existTagsNum: 1, sys_tags: [] });
    });

    it('refuses bad tags, bad key ids, unknown keys and more than 10 tags with the documented codes', async () => {
      const keyId = await newKey('hw-tags-errors');
      expectError(await request('POST', `${keyId}/tags`, {}), 400, 'KMS.0204');
      expectError(await request('POST', `${keyId}/tags`, { tag: { key: 'k'.repeat(37), value: 'v' } }), 400, 'KMS.0411');
      expectError(await request('POST', `${keyId}/tags`, { tag: { key: 'a=b', value: 'v' } }), 400, 'KMS.0406');
      expectError(await request('POST', `${keyId}/tags`, { tag: { key: 'k', value: 'v'.repeat(44) } }), 400, 'KMS.0410');
      expectError(await request('POST', `${keyId}/tags`, { tag: { key: 'k', value: 'a<b' } }), 400, 'KMS.0405');
      expectError(await request('POST', `${keyId}/tags`, { tag: 'k=v' }), 400, 'KMS.0412');
      expectError(await request('POST', `${keyId}/tags/action`, { action: 'create', tags: [] }), 400, 'KMS.0401');
      expectError(await request('POST', `${keyId}/tags/action`, { action: 'update', tags: [{ key: 'k', value: 'v' }] }), 400, 'KMS.0404');
      expectError(await request('POST', `${keyId}/tags/action`, { action: 'create', tags: { key: 'k' } }), 400, 'KMS.0412');
      expectError(await request('POST', `${keyId}/tags/action`, { tags: [{ key: 'k', value: 'v' }] }), 400, 'KMS.0204');
      const eleven = Array.from({ length: 11 }, (_, i) => ({ key: `k${i}`, value: 'v' }));
      expectError(await request('POST', `${keyId}/tags/action`, { action: 'create', tags: eleven }), 400, 'KMS.0409');
      expectError(await request('GET', 'not-a-key/tags'), 400, 'KMS.0205');
      expectError(await request('GET', `${MISSING_KEY}/tags`), 404, 'KMS.0207');
      expectError(await request('PUT', `${keyId}/tags`, { tag: { key: 'k', value: 'v' } }), 404, 'APIGW.0101');
      // A tag API name is not an action of POST /kms/<action>.
      expectError(await hw('create-kms-tag', { key_id: keyId }), 404, 'APIGW.0101');
    });
  });

  describe('rotation', () => {
    it('enable, update the interval, get the status (with rotations made through AWS), disable', async () => {
      const keyId = await newKey('hw-rotation');
      let status = await hw('get-key-rotation-status', { key_id: keyId });
      expect(status.body).to.deep.equal({ key_rotation_enabled: false, rotation_interval: 365, last_rotation_time: '', number_of_rotations: 0 });
      expect((await hw('enable-key-rotation', { key_id: keyId })).status).to.equal(200);
      expect((await hw('update-key-rotation-interval', { key_id: keyId, rotation_interval: 120 })).status).to.equal(200);
      const aws = await kms.send(new GetKeyRotationStatusCommand({ KeyId: keyId }));
      expect(aws).to.include({ KeyRotationEnabled: true, RotationPeriodInDays: 120 });

      await kms.send(new RotateKeyOnDemandCommand({ KeyId: keyId }));
      status = await hw('get-key-rotation-status', { key_id: keyId });
      expect(status.body).to.include({ key_rotation_enabled: true, rotation_interval: 120, number_of_rotations: 1 });
      expect(Number(status.body.last_rotation_time)).to.be.closeTo(Date.now(), 60_000);

      await kms.send(new EnableKeyRotationCommand({ KeyId: keyId, RotationPeriodInDays: 200 }));
      expect((await hw('get-key-rotation-status', { key_id: keyId })).body.rotation_interval).to.equal(200);
      expect((await hw('disable-key-rotation', { key_id: keyId })).status).to.equal(200);
      expect((await kms.send(new GetKeyRotationStatusCommand({ KeyId: keyId }))).KeyRotationEnabled).to.equal(false);
    });

    it('answers the documented errors: interval out of range, below AWS minimum, rotation not enabled, external keys, bad ids', async () => {
      const keyId = await newKey('hw-rotation-errors');
      expectError(await hw('update-key-rotation-interval', { key_id: keyId, rotation_interval: 120 }), 400, 'KMS.0313');
      await hw('enable-key-rotation', { key_id: keyId });
      expectError(await hw('update-key-rotation-interval', { key_id: keyId, rotation_interval: 29 }), 400, 'KMS.0308');
      expectError(await hw('update-key-rotation-interval', { key_id: keyId, rotation_interval: 366 }), 400, 'KMS.0308');
      const belowAws = await hw('update-key-rotation-interval', { key_id: keyId, rotation_interval: 30 });
      expectError(belowAws, 400, 'KMS.0308');
      expect(belowAws.body.error.error_msg).to.match(/90/);
      expectError(await hw('update-key-rotation-interval', { key_id: keyId }), 400, 'KMS.0204');
      const external = await newKey('hw-rotation-external', { origin: 'external' });
      expectError(await hw('enable-key-rotation', { key_id: external }), 400, 'KMS.0312');
      expectError(await hw('enable-key-rotation', { key_id: 'nope' }), 400, 'KMS.0205');
      expectError(await hw('get-key-rotation-status', { key_id: MISSING_KEY }), 404, 'KMS.0207');
      await hw('disable-key', { key_id: keyId });
      expectError(await hw('enable-key-rotation', { key_id: keyId }), 400, 'KMS.0209');
    });
  });

  describe('grants', () => {
    it('create-grant maps operations and principals; AWS lists the grant; list-grants, revoke-grant, retire-grant', async () => {
      const keyId = await newKey('hw-grants');
      const created = await hw('create-grant', {
        key_id: keyId,
        grantee_principal: 'alice',
        operations: ['encrypt-data', 'decrypt-datakey', 'describe-key'],
        name: 'hw-grant',
        retiring_principal: 'bob',
      });
      expect(created.status, created.raw).to.equal(200);
      expect(created.body.grant_id).to.match(/^[0-9a-f]{64}$/);
      expect(created.body.grant_token).to.be.a('string').and.not.empty;

      const { Grants } = await kms.send(new ListGrantsCommand({ KeyId: keyId }));
      expect(Grants).to.have.length(1);
      expect(Grants![0]).to.include({ GrantId: created.body.grant_id, GranteePrincipal: `arn:aws:iam::${ACCOUNT}:user/alice`, RetiringPrincipal: `arn:aws:iam::${ACCOUNT}:user/bob`, Name: 'hw-grant' });
      expect(Grants![0].Operations).to.have.members(['Encrypt', 'Decrypt', 'DescribeKey']);

      // A grant made through AWS to the account, retirable by the (permissive-mode) caller.
      const aws = await kms.send(
        new CreateGrantCommand({ KeyId: keyId, GranteePrincipal: `arn:aws:iam::${ACCOUNT}:root`, RetiringPrincipal: `arn:aws:iam::${ACCOUNT}:root`, Operations: ['GenerateDataKey'] }),
      );
      const listed = await hw('list-grants', { key_id: keyId, limit: '1' });
      expect(listed.body).to.include({ total: 2, truncated: 'true', next_marker: '1' });
      const second = await hw('list-grants', { key_id: keyId, limit: 1, marker: '1' });
      expect(second.body).to.include({ total: 2, truncated: 'false', next_marker: '' });
      const all = [...listed.body.grants, ...second.body.grants] as Row[];
      const mine = all.find((g) => g.grant_id === created.body.grant_id)!;
      expect(mine).to.include({ key_id: keyId, grantee_principal: 'alice', grantee_principal_type: 'user', retiring_principal: 'bob', issuing_principal: ACCOUNT, name: 'hw-grant' });
      expect(mine.operations).to.have.members(['encrypt-datakey', 'encrypt-data', 'decrypt-datakey', 'decrypt-data', 'describe-key']);
      const theirs = all.find((g) => g.grant_id === aws.GrantId)!;
      expect(theirs).to.include({ grantee_principal: ACCOUNT, grantee_principal_type: 'domain' });
      expect(theirs.operations).to.deep.equal(['create-datakey']);

      const retirable = await hw('list-retirable-grants', {});
      expect(retirable.status, retirable.raw).to.equal(200);
      expect((retirable.body.grants as Row[]).map((g) => g.grant_id)).to.include(aws.GrantId);
      expect((retirable.body.grants as Row[]).map((g) => g.grant_id)).not.to.include(created.body.grant_id);

      expect((await hw('retire-grant', { key_id: keyId, grant_id: aws.GrantId })).status).to.equal(200);
      expect((await hw('revoke-grant', { key_id: keyId, grant_id: created.body.grant_id })).status).to.equal(200);
      expect((await kms.send(new ListGrantsCommand({ KeyId: keyId }))).Grants).to.deep.equal([]);
      expectError(await hw('revoke-grant', { key_id: keyId, grant_id: created.body.grant_id }), 404, 'KMS.0207');
    });

    it('refuses bad grants with the documented codes', async () => {
      const keyId = await newKey('hw-grants-errors');
      const base = { key_id: keyId, grantee_principal: 'alice', operations: ['encrypt-data'] };
      expectError(await hw('create-grant', { ...base, operations: undefined }), 400, 'KMS.0204');
      expectError(await hw('create-grant', { ...base, grantee_principal: undefined }), 400, 'KMS.0204');
      expectError(await hw('create-grant', { ...base, operations: ['create-grant'] }), 400, 'KMS.2401');
      expectError(await hw('create-grant', { ...base, operations: ['rotate-key'] }), 400, 'KMS.0308');
      expectError(await hw('create-grant', { ...base, operations: [] }), 400, 'KMS.0308');
      expectError(await hw('create-grant', { ...base, grantee_principal: 'arn:aws:iam::x' }), 400, 'KMS.2402');
      expectError(await hw('create-grant', { ...base, grantee_principal_type: 'group' }), 400, 'KMS.0308');
      expectError(await hw('create-grant', { ...base, grantee_principal_type: 'domain', grantee_principal: 'notanaccount' }), 400, 'KMS.0308');
      expectError(await hw('create-grant', { ...base, name: 'bad name' }), 400, 'KMS.0308');
      expectError(await hw('create-grant', { ...base, key_id: MISSING_KEY }), 404, 'KMS.0207');
      expectError(await hw('list-grants', { key_id: keyId, limit: '0' }), 400, 'KMS.1601');
      expectError(await hw('list-grants', { key_id: keyId, marker: '-1' }), 400, 'KMS.1602');
      expectError(await hw('revoke-grant', { key_id: keyId, grant_id: 'xyz' }), 400, 'KMS.2501');
      expectError(await hw('retire-grant', { key_id: keyId }), 400, 'KMS.0204');
      await hw('schedule-key-deletion', { key_id: keyId, pending_days: '7' });
      expectError(await hw('create-grant', base), 400, 'KMS.0210');
    });
  });

  describe('import', () => {
    it('create-key origin external, get-parameters-for-import, import-key-material (node:crypto wrapping); the key then works through AWS', async () => {
      const keyId = await newKey('hw-import', { origin: 'external' });
      expect((await hw('describe-key', { key_id: keyId })).body.key_info).to.include({ origin: 'external', key_state: '5' });

      const params = await hw('get-parameters-for-import', { key_id: keyId, wrapping_algorithm: 'RSAES_OAEP_SHA_256' });
      expect(params.status, params.raw).to.equal(200);
      expect(params.body.key_id).to.equal(keyId);
      expect(params.body.import_token).to.match(/^[0-9a-zA-Z+/=]+$/);
      expect(params.body.expiration_time).to.be.a('number').and.closeTo(Date.now() / 1000 + 24 * 3600, 120);
      const publicKey = createPublicKey({ key: Buffer.from(params.body.public_key, 'base64'), format: 'der', type: 'spki' });
      expect(publicKey.asymmetricKeyDetails?.modulusLength).to.equal(2048);

      const material = randomBytes(32);
      const wrapped = publicEncrypt({ key: publicKey, padding: constants.RSA_PKCS1_OAEP_PADDING, oaepHash: 'sha256' }, material);
      const encrypted = wrapped.toString('base64');
      expect(encrypted).to.match(/^[0-9a-zA-Z+/=]{344,360}$/);
      const expiration = Math.floor(Date.now() / 1000) + 30 * 24 * 3600;
      const imported = await hw('import-key-material', { key_id: keyId, import_token: params.body.import_token, encrypted_key_material: encrypted, expiration_time: expiration });
      expect(imported.status, imported.raw).to.equal(200);

      const { KeyMetadata } = await kms.send(new DescribeKeyCommand({ KeyId: keyId }));
      expect(KeyMetadata).to.include({ KeyState: 'Enabled', Origin: 'EXTERNAL', ExpirationModel: 'KEY_MATERIAL_EXPIRES' });
      expect(KeyMetadata!.ValidTo!.getTime()).to.equal(expiration * 1000);
      const plaintext = Buffer.from('imported through Huawei, used through AWS');
      const { CiphertextBlob } = await kms.send(new EncryptCommand({ KeyId: keyId, Plaintext: plaintext }));
      expect(Buffer.from((await kms.send(new DecryptCommand({ CiphertextBlob }))).Plaintext!)).to.deep.equal(plaintext);
      const viaHuawei = await hw('encrypt-data', { key_id: keyId, plain_text: 'and through Huawei' });
      expect((await hw('decrypt-data', { cipher_text: viaHuawei.body.cipher_text })).body.plain_text).to.equal('and through Huawei');

      expect((await hw('delete-imported-key-material', { key_id: keyId })).status).to.equal(200);
      expect((await kms.send(new DescribeKeyCommand({ KeyId: keyId }))).KeyMetadata!.KeyState).to.equal('PendingImport');
    });

    it('get-parameters-for-import still offers RSAES_PKCS1_V1_5 (which the AWS dialect refuses): material wrapped with it imports and works', async () => {
      const keyId = await newKey('hw-import-pkcs1', { origin: 'external' });
      const params = await hw('get-parameters-for-import', { key_id: keyId, wrapping_algorithm: 'RSAES_PKCS1_V1_5', wrapping_key_spec: 'RSA_3072' });
      expect(params.status, params.raw).to.equal(200);
      const publicKey = createPublicKey({ key: Buffer.from(params.body.public_key, 'base64'), format: 'der', type: 'spki' });
      const wrapped = publicEncrypt({ key: publicKey, padding: constants.RSA_PKCS1_PADDING }, randomBytes(32));
      const imported = await hw('import-key-material', { key_id: keyId, import_token: params.body.import_token, encrypted_key_material: wrapped.toString('base64') });
      expect(imported.status, imported.raw).to.equal(200);
      const sealed = await hw('encrypt-data', { key_id: keyId, plain_text: 'wrapped with PKCS#1 v1.5' });
      expect((await hw('decrypt-data', { cipher_text: sealed.body.cipher_text })).body.plain_text).to.equal('wrapped with PKCS#1 v1.5');
    });

    it('refuses bad import requests with the documented codes', async () => {
      const internal = await newKey('hw-import-kms');
      expectError(await hw('get-parameters-for-import', { key_id: internal, wrapping_algorithm: 'RSAES_OAEP_SHA_1' }), 400, 'KMS.0309');
      expectError(await hw('delete-imported-key-material', { key_id: internal }), 400, 'KMS.0309');
      const external = await newKey('hw-import-errors', { origin: 'external' });
      expectError(await hw('get-parameters-for-import', { key_id: external }), 400, 'KMS.0204');
      expectError(await hw('get-parameters-for-import', { key_id: external, wrapping_algorithm: 'SM2PKE' }), 400, 'KMS.0308');
      expectError(await hw('get-parameters-for-import', { key_id: external, wrapping_algorithm: 'RSAES_OAEP_SHA_1', wrapping_key_spec: 'RSA_1024' }), 400, 'KMS.0308');
      const params = await hw('get-parameters-for-import', { key_id: external, wrapping_algorithm: 'RSAES_OAEP_SHA_1' });
      const garbage = randomBytes(256).toString('base64');
      expectError(await hw('import-key-material', { key_id: external, import_token: params.body.import_token, encrypted_key_material: garbage }), 400, 'KMS.0311');
      expectError(await hw('import-key-material', { key_id: external, import_token: randomBytes(150).toString('base64'), encrypted_key_material: garbage }), 400, 'KMS.2605');
      expectError(await hw('import-key-material', { key_id: external, import_token: params.body.import_token, encrypted_key_material: garbage, expiration_time: '1000000000' }), 400, 'KMS.2602');
      expectError(await hw('import-key-material', { key_id: external, import_token: params.body.import_token, encrypted_key_material: 'not base64!' }), 400, 'KMS.0308');
      expectError(await hw('import-key-material', { key_id: external, import_token: params.body.import_token }), 400, 'KMS.0204');
      expectError(await hw('delete-imported-key-material', { key_id: external }), 400, 'KMS.2701');
      expectError(await hw('create-key', { key_alias: 'hw-import-bad-origin', origin: 'hsm' }), 400, 'KMS.0308');
    });
  });

  it('AWS keys take Huawei tags and grants too', async () => {
    const { KeyMetadata } = await kms.send(new CreateKeyCommand({}));
    const keyId = KeyMetadata!.KeyId!;
    expect((await request('POST', `${keyId}/tags`, { tag: { key: 'team', value: 'blue' } })).status).to.equal(204);
    expect((await kms.send(new ListResourceTagsCommand({ KeyId: keyId }))).Tags).to.deep.equal([{ TagKey: 'team', TagValue: 'blue' }]);
    const grant = await hw('create-grant', { key_id: keyId, grantee_principal: ACCOUNT, grantee_principal_type: 'domain', operations: ['create-datakey'] });
    expect(grant.status, grant.raw).to.equal(200);
    expect((await kms.send(new ListGrantsCommand({ KeyId: keyId }))).Grants![0]).to.include({ GranteePrincipal: `arn:aws:iam::${ACCOUNT}:root` });
  });
});
