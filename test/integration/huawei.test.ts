import {
  CreateAliasCommand,
  CreateKeyCommand,
  DescribeKeyCommand,
  DisableKeyCommand,
  ListAliasesCommand,
  ListKeysCommand,
} from '@aws-sdk/client-kms';
import { createHash } from 'node:crypto';
import { expect } from 'chai';
import { serverPerSuite, type TestServer } from '../support/server';
import { expectHuaweiError as expectError, huaweiRequestAs as hw, PROJECT } from '../support/huawei-client';

/**
 * The Huawei Cloud / Open Telekom Cloud KMS dialect over HTTP against a real server and token.
 * Requests and expectations follow the OTC / Huawei Cloud KMS API reference (see
 * src/wire/huawei/actions/index.ts for the document names).
 */

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
const CIPHER_TEXT = /^[0-9a-zA-Z+/=]{188,5648}$/;
const SEQUENCE = '919c82d4-8046-4722-9094-35c3c6524cff';
/** The ciphertext of the decrypt-data reference's example (kms_02_0034): not issued by p11kms. */
const SEED_CIPHER_TEXT =
  'AgDoAG7EsEc2OHpQxz4gDFDH54CqwaelpTdEl+RFPjbKn5klPTvOywYIeZX60kPbFsYOpXJwkL32HUM50MY22Eb1fOSpZK7WJpYjx66EWOkJvO+Ey3r1dLdNAjrZrYzQlxRwNS05CaNKoX5rr3NoDnmv+UNobaiS25muLLiqOt6UrStaWow9AUyOHSzl+BrX2Vu0whv74djK+3COO6cXT2CBO6WajTJsOgYdxMfv24KWSKw0TqvHe8XDKASQGKdgfI74hzI1YWJlNjlmLWFlMTAtNDRjZC1iYzg3LTFiZGExZGUzYjdkNwAAAACdcfNpLXwDUPH3023MvZK8RPHe129k6VdNIi3zNb0eFQ==';

const sha256hex = (b: Buffer) => createHash('sha256').update(b).digest('hex');

describe('Huawei Cloud / OTC dialect', function () {
  this.timeout(30_000);
  let server: TestServer;
  let keyId: string;

  serverPerSuite({}, (started) => (server = started));
  before(async () => {
    const created = await hw(server, 'create-key', { key_alias: 'hw-app', key_description: 'first test key' });
    expect(created.status, JSON.stringify(created.body)).to.equal(200);
    keyId = created.body.key_info.key_id;
  });

  describe('key management', () => {
    it('create-key returns key_info with key_id and domain_id', async () => {
      const reply = await hw(server, 'create-key', { key_alias: 'hw-created', sequence: SEQUENCE });
      expect(reply.status).to.equal(200);
      expect(reply.body.key_info.key_id).to.match(UUID);
      expect(reply.body.key_info.domain_id).to.equal('111122223333');
      expect(reply.body.sequence).to.equal(SEQUENCE);
    });

    it('create-key refuses a duplicate alias (KMS.1104), a bad alias (KMS.1101), a long description (KMS.1103), no alias (KMS.0204)', async () => {
      expectError(await hw(server, 'create-key', { key_alias: 'hw-app' }), 400, 'KMS.1104');
      expectError(await hw(server, 'create-key', { key_alias: 'bad alias!' }), 400, 'KMS.1101');
      expectError(await hw(server, 'create-key', { key_alias: 'svc/default' }), 400, 'KMS.1101');
      expectError(await hw(server, 'create-key', { key_alias: 'x'.repeat(256) }), 400, 'KMS.1101');
      expectError(await hw(server, 'create-key', { key_alias: 'team:app' }), 400, 'KMS.1101');
      expectError(await hw(server, 'create-key', { key_alias: 'hw-desc', key_description: 'd'.repeat(256) }), 400, 'KMS.1103');
      expectError(await hw(server, 'create-key', {}), 400, 'KMS.0204');
      expectError(await hw(server, 'create-key', { key_alias: 'hw-sm4', key_spec: 'SM4' }), 400, 'KMS.0308');
      expectError(await hw(server, 'create-key', { key_alias: 'hw-ext', origin: 'hsm' }), 400, 'KMS.0308');
    });

    it('describe-key by key id, alias and alias URN returns every key_info field', async () => {
      for (const ref of [keyId, 'alias/hw-app', `kms:eu-de:${PROJECT}:alias:hw-app`]) {
        const reply = await hw(server, 'describe-key', { key_id: ref });
        expect(reply.status, ref).to.equal(200);
        const info = reply.body.key_info;
        expect(info).to.include({
          key_id: keyId,
          domain_id: '111122223333',
          key_alias: 'hw-app',
          realm: 'eu-de',
          key_description: 'first test key',
          key_spec: 'AES_256',
          key_usage: 'ENCRYPT_DECRYPT',
          scheduled_deletion_date: '',
          key_state: '2',
          default_key_flag: '0',
          origin: 'kms',
        });
        expect(info.creation_date).to.match(/^\d{13}$/);
        expect(Math.abs(Number(info.creation_date) - Date.now())).to.be.below(10 * 60_000);
        for (const field of ['key_type', 'expiration_time', 'key_rotation_enabled', 'sys_enterprise_project_id']) expect(info).to.have.property(field);
      }
    });

    it('describe-key: malformed key_id is KMS.0205, an unknown key KMS.0207 (404)', async () => {
      expectError(await hw(server, 'describe-key', { key_id: 'not a key' }), 400, 'KMS.0205');
      expectError(await hw(server, 'describe-key', { key_id: '00000000-0000-4000-8000-000000000000' }), 404, 'KMS.0207');
      expectError(await hw(server, 'describe-key', { key_id: 'alias/none-such' }), 404, 'KMS.0207');
      expectError(await hw(server, 'describe-key', {}), 400, 'KMS.0204');
    });

    it('list-keys pages with limit / numeric marker and filters by key_state', async () => {
      const all = await hw(server, 'list-keys', {});
      expect(all.status).to.equal(200);
      expect(all.body.truncated).to.equal('false');
      expect(all.body.next_marker).to.equal('');
      expect(all.body.total).to.equal(all.body.keys.length);
      expect(all.body.keys).to.include(keyId);
      expect(all.body.key_details.map((d: { key_id: string }) => d.key_id)).to.deep.equal(all.body.keys);

      const first = await hw(server, 'list-keys', { limit: '1' });
      expect(first.body.keys).to.have.length(1);
      expect(first.body.truncated).to.equal('true');
      expect(first.body.next_marker).to.equal('1');
      const second = await hw(server, 'list-keys', { limit: '1', marker: first.body.next_marker });
      expect(second.body.keys[0]).to.equal(all.body.keys[1]);

      const enabled = await hw(server, 'list-keys', { key_state: '2' });
      expect(enabled.body.key_details.every((d: { key_state: string }) => d.key_state === '2')).to.equal(true);
      const importing = await hw(server, 'list-keys', { key_state: '5' });
      expect(importing.body).to.include({ total: 0, truncated: 'false' });
      expect(importing.body.keys).to.deep.equal([]);

      expectError(await hw(server, 'list-keys', { limit: '0' }), 400, 'KMS.1601');
      expectError(await hw(server, 'list-keys', { limit: 'ten' }), 400, 'KMS.1601');
      expectError(await hw(server, 'list-keys', { marker: '-1' }), 400, 'KMS.1602');
      expectError(await hw(server, 'list-keys', { key_state: '6' }), 400, 'KMS.0308');
    });

    it('disable-key and enable-key report key_state; state errors are KMS.1301 / KMS.1201; crypto on a disabled key is KMS.0209', async () => {
      const key = (await hw(server, 'create-key', { key_alias: 'hw-toggle' })).body.key_info.key_id;
      const disabled = await hw(server, 'disable-key', { key_id: key });
      expect(disabled.body).to.deep.equal({ key_info: { key_id: key, key_state: '3' } });
      expectError(await hw(server, 'encrypt-data', { key_id: key, plain_text: 'x' }), 400, 'KMS.0209');
      const enabled = await hw(server, 'enable-key', { key_id: key });
      expect(enabled.body).to.deep.equal({ key_info: { key_id: key, key_state: '2' } });
      // Only key ids, not aliases, are documented for these calls.
      expectError(await hw(server, 'enable-key', { key_id: 'alias/hw-toggle' }), 400, 'KMS.0205');

      await hw(server, 'schedule-key-deletion', { key_id: key, pending_days: '7' });
      expectError(await hw(server, 'enable-key', { key_id: key }), 400, 'KMS.1201');
      expectError(await hw(server, 'disable-key', { key_id: key }), 400, 'KMS.1301');
    });

    it('schedule-key-deletion / cancel-key-deletion with pending_days 7–1096 (AWS-accepted 7–30 applied)', async () => {
      const key = (await hw(server, 'create-key', { key_alias: 'hw-delete' })).body.key_info.key_id;
      expectError(await hw(server, 'schedule-key-deletion', { key_id: key, pending_days: '6' }), 400, 'KMS.1401');
      expectError(await hw(server, 'schedule-key-deletion', { key_id: key, pending_days: '1097' }), 400, 'KMS.1401');
      // Huawei accepts 31–1096; the AWS operation (7–30) refuses: Huawei's documented error.
      const beyond = await hw(server, 'schedule-key-deletion', { key_id: key, pending_days: '365' });
      expectError(beyond, 400, 'KMS.1401');
      expectError(await hw(server, 'schedule-key-deletion', { key_id: key }), 400, 'KMS.0204');
      expectError(await hw(server, 'cancel-key-deletion', { key_id: key }), 400, 'KMS.1501');

      const scheduled = await hw(server, 'schedule-key-deletion', { key_id: key, pending_days: '30' });
      expect(scheduled.body).to.deep.equal({ key_id: key, key_state: '4' });
      const info = (await hw(server, 'describe-key', { key_id: key })).body.key_info;
      expect(info.key_state).to.equal('4');
      expect(Number(info.scheduled_deletion_date) - Date.now()).to.be.closeTo(30 * 86_400_000, 10 * 60_000);
      expectError(await hw(server, 'schedule-key-deletion', { key_id: key, pending_days: '7' }), 400, 'KMS.1402');
      expectError(await hw(server, 'encrypt-data', { key_id: key, plain_text: 'x' }), 400, 'KMS.0210');
      expectError(await hw(server, 'update-key-description', { key_id: key, key_description: 'x' }), 400, 'KMS.0210');

      const cancelled = await hw(server, 'cancel-key-deletion', { key_id: key });
      expect(cancelled.body).to.deep.equal({ key_id: key, key_state: '3' });
    });

    it('update-key-alias replaces the alias; duplicates are KMS.1104', async () => {
      const key = (await hw(server, 'create-key', { key_alias: 'hw-old' })).body.key_info.key_id;
      const reply = await hw(server, 'update-key-alias', { key_id: key, key_alias: 'hw-new' });
      expect(reply.body).to.deep.equal({ key_info: { key_id: key, key_alias: 'hw-new' } });
      expect((await hw(server, 'describe-key', { key_id: 'alias/hw-new' })).body.key_info.key_id).to.equal(key);
      expectError(await hw(server, 'describe-key', { key_id: 'alias/hw-old' }), 404, 'KMS.0207');
      expectError(await hw(server, 'update-key-alias', { key_id: key, key_alias: 'hw-app' }), 400, 'KMS.1104');
      expectError(await hw(server, 'update-key-alias', { key_id: key, key_alias: 'a b' }), 400, 'KMS.1101');
    });

    it('update-key-description', async () => {
      const reply = await hw(server, 'update-key-description', { key_id: keyId, key_description: 'second description' });
      expect(reply.body).to.deep.equal({ key_info: { key_id: keyId, key_description: 'second description' } });
      expect((await hw(server, 'describe-key', { key_id: keyId })).body.key_info.key_description).to.equal('second description');
      expectError(await hw(server, 'update-key-description', { key_id: keyId, key_description: 'd'.repeat(256) }), 400, 'KMS.1103');
      expectError(await hw(server, 'update-key-description', { key_id: keyId }), 400, 'KMS.0204');
      await hw(server, 'update-key-description', { key_id: keyId, key_description: 'first test key' });
    });
  });

  describe('data', () => {
    it('encrypt-data / decrypt-data round trip with encryption_context and sequence echo', async () => {
      const context = { Key1: 'Value1', Key2: 'Value2' };
      const enc = await hw(server, 'encrypt-data', { key_id: keyId, plain_text: '12345678', encryption_context: context });
      expect(enc.status).to.equal(200);
      expect(Object.keys(enc.body).sort()).to.deep.equal(['cipher_text', 'key_id']);
      expect(enc.body.key_id).to.equal(keyId);
      expect(enc.body.cipher_text).to.match(CIPHER_TEXT);

      const dec = await hw(server, 'decrypt-data', { cipher_text: enc.body.cipher_text, encryption_context: context, sequence: SEQUENCE });
      expect(dec.body).to.deep.equal({ key_id: keyId, plain_text: '12345678', sequence: SEQUENCE });
      const plain = await hw(server, 'decrypt-data', { cipher_text: enc.body.cipher_text, encryption_context: context });
      expect(plain.body).to.deep.equal({ key_id: keyId, plain_text: '12345678' });

      // Required on decrypt when used on encrypt; a different context fails too.
      expectError(await hw(server, 'decrypt-data', { cipher_text: enc.body.cipher_text }), 400, 'KMS.2201');
      expectError(await hw(server, 'decrypt-data', { cipher_text: enc.body.cipher_text, encryption_context: { Key1: 'other' } }), 400, 'KMS.2201');
    });

    it('encrypt-data by alias, with the largest plaintext, stays within the cipher_text limits', async () => {
      const big = 'é'.repeat(2048); // 4096 bytes of UTF-8
      const enc = await hw(server, 'encrypt-data', { key_id: 'alias/hw-app', plain_text: big });
      expect(enc.body.cipher_text).to.match(CIPHER_TEXT);
      expect((await hw(server, 'decrypt-data', { cipher_text: enc.body.cipher_text })).body.plain_text).to.equal(big);
      const small = await hw(server, 'encrypt-data', { key_id: 'alias/hw-app', plain_text: 'a' });
      expect(small.body.cipher_text).to.match(CIPHER_TEXT);
      expect(small.body.cipher_text.length).to.be.at.least(188);
    });

    it('encrypt-data errors: plain_text (KMS.2101 / KMS.0204), encryption_context (KMS.0208), key (KMS.0205 / KMS.0207)', async () => {
      expectError(await hw(server, 'encrypt-data', { key_id: keyId, plain_text: '' }), 400, 'KMS.2101');
      expectError(await hw(server, 'encrypt-data', { key_id: keyId, plain_text: 'a'.repeat(4097) }), 400, 'KMS.2101');
      expectError(await hw(server, 'encrypt-data', { key_id: keyId }), 400, 'KMS.0204');
      expectError(await hw(server, 'encrypt-data', { key_id: keyId, plain_text: 'x', encryption_context: { k: 'v'.repeat(8200) } }), 400, 'KMS.0208');
      expectError(await hw(server, 'encrypt-data', { key_id: keyId, plain_text: 'x', encryption_context: { k: 1 } }), 400, 'KMS.0208');
      expectError(await hw(server, 'encrypt-data', { key_id: keyId, plain_text: 'x', encryption_context: 'k=v' }), 400, 'KMS.0208');
      expectError(await hw(server, 'encrypt-data', { key_id: 'nope', plain_text: 'x' }), 400, 'KMS.0205');
      expectError(await hw(server, 'encrypt-data', { key_id: '00000000-0000-4000-8000-000000000000', plain_text: 'x' }), 404, 'KMS.0207');
    });

    it("decrypt-data: the reference example's request shape is accepted and its foreign ciphertext rejected (KMS.2201)", async () => {
      expect(SEED_CIPHER_TEXT).to.match(CIPHER_TEXT);
      expectError(await hw(server, 'decrypt-data', { cipher_text: SEED_CIPHER_TEXT }), 400, 'KMS.2201');
      expectError(await hw(server, 'decrypt-data', { cipher_text: SEED_CIPHER_TEXT, encryption_context: { Key1: 'Value1' }, sequence: SEQUENCE }), 400, 'KMS.2201');
      // Pattern violations, absent cipher_text, a tampered envelope.
      expectError(await hw(server, 'decrypt-data', { cipher_text: 'short' }), 400, 'KMS.2201');
      expectError(await hw(server, 'decrypt-data', { cipher_text: `${'A'.repeat(200)}!` }), 400, 'KMS.2201');
      expectError(await hw(server, 'decrypt-data', { cipher_text: 'A'.repeat(5652) }), 400, 'KMS.2201');
      expectError(await hw(server, 'decrypt-data', {}), 400, 'KMS.0204');
      const enc = await hw(server, 'encrypt-data', { key_id: keyId, plain_text: 'secret value' });
      const bytes = Buffer.from(enc.body.cipher_text, 'base64');
      bytes[60] ^= 1;
      const reply = await hw(server, 'decrypt-data', { cipher_text: bytes.toString('base64') });
      expectError(reply, 400, 'KMS.2201');
      expect(JSON.stringify(reply.body)).not.to.contain('secret value');
      expectError(await hw(server, 'decrypt-data', { cipher_text: enc.body.cipher_text, sequence: 'short' }), 400, 'KMS.0206');
    });

    it('create-datakey returns hex plain_text and cipher_text; decrypt-datakey opens it', async () => {
      const dk = await hw(server, 'create-datakey', { key_id: keyId, datakey_length: '512', encryption_context: { app: 'x' } });
      expect(dk.status).to.equal(200);
      expect(dk.body.key_id).to.equal(keyId);
      expect(dk.body.plain_text).to.match(/^[0-9A-F]{128}$/);
      expect(dk.body.cipher_text).to.match(/^[0-9A-F]+$/);
      const dec = await hw(server, 'decrypt-datakey', { key_id: keyId, cipher_text: dk.body.cipher_text, datakey_cipher_length: '64', encryption_context: { app: 'x' } });
      expect(dec.body).to.deep.equal({
        data_key: dk.body.plain_text,
        datakey_length: '64',
        datakey_dgst: sha256hex(Buffer.from(dk.body.plain_text, 'hex')).toUpperCase(),
      });
      const defaults = await hw(server, 'create-datakey', { key_id: 'alias/hw-app' });
      expect(defaults.body.plain_text).to.have.length(64);
      const aes128 = await hw(server, 'create-datakey', { key_id: keyId, key_spec: 'AES_128' });
      expect(aes128.body.plain_text).to.have.length(32);
      // In range but not whole bytes: KMS.1903, not the range error.
      expectError(await hw(server, 'create-datakey', { key_id: keyId, datakey_length: '12' }), 400, 'KMS.1903');
      expectError(await hw(server, 'create-datakey-without-plaintext', { key_id: keyId, datakey_length: '260' }), 400, 'KMS.1903');
      expectError(await hw(server, 'create-datakey', { key_id: keyId, datakey_length: '8200' }), 400, 'KMS.1901');
      // datakey_cipher_length not the DEK's length: KMS.2204.
      expectError(await hw(server, 'decrypt-datakey', { key_id: keyId, cipher_text: dk.body.cipher_text, datakey_cipher_length: '32', encryption_context: { app: 'x' } }), 400, 'KMS.2204');
      expectError(await hw(server, 'decrypt-datakey', { key_id: keyId, cipher_text: dk.body.cipher_text, datakey_cipher_length: '0', encryption_context: { app: 'x' } }), 400, 'KMS.2202');
      expectError(await hw(server, 'decrypt-datakey', { key_id: keyId, cipher_text: 'ZZ', datakey_cipher_length: '64' }), 400, 'KMS.2201');
    });

    it('create-datakey-without-plaintext returns only cipher_text, which decrypt-datakey opens', async () => {
      const dk = await hw(server, 'create-datakey-without-plaintext', { key_id: keyId, datakey_length: '256' });
      expect(Object.keys(dk.body).sort()).to.deep.equal(['cipher_text', 'key_id']);
      const dec = await hw(server, 'decrypt-datakey', { key_id: keyId, cipher_text: dk.body.cipher_text, datakey_cipher_length: '32' });
      expect(dec.body.data_key).to.match(/^[0-9A-F]{64}$/);
      expect(dec.body.datakey_dgst).to.equal(sha256hex(Buffer.from(dec.body.data_key, 'hex')).toUpperCase());
      expectError(await hw(server, 'create-datakey-without-plaintext', { key_id: keyId, datakey_length: '0' }), 400, 'KMS.1901');
    });

    it('encrypt-datakey takes DEK ‖ SHA-256 in hex; digest and length are checked', async () => {
      const dek = Buffer.from('7549d9aea901767bf3c0b3e14b10722eaf6f59053bbd82045d04e075e809a0fe6ccab48f8e5efe74e4b18ff0512525e527b10331100f357bf42125d8d5ced94f', 'hex');
      const plain = dek.toString('hex') + sha256hex(dek);
      const enc = await hw(server, 'encrypt-datakey', { key_id: keyId, plain_text: plain, datakey_plain_length: '64' });
      expect(enc.status).to.equal(200);
      expect(enc.body.key_id).to.equal(keyId);
      expect(enc.body.datakey_length).to.equal('64');
      const dec = await hw(server, 'decrypt-datakey', { key_id: keyId, cipher_text: enc.body.cipher_text, datakey_cipher_length: '64' });
      expect(dec.body.data_key.toLowerCase()).to.equal(dek.toString('hex'));
      expect(dec.body.datakey_dgst).to.equal('FBC8AC72B0785CA7FE33EB6776CE3990B11E32B299D9C0A9EE0305FB9540F797');

      const wrongDigest = dek.toString('hex') + sha256hex(Buffer.from('other'));
      expectError(await hw(server, 'encrypt-datakey', { key_id: keyId, plain_text: wrongDigest, datakey_plain_length: '64' }), 400, 'KMS.2103');
      // datakey_plain_length not matching plain_text: KMS.2104.
      expectError(await hw(server, 'encrypt-datakey', { key_id: keyId, plain_text: plain, datakey_plain_length: '32' }), 400, 'KMS.2104');
      expectError(await hw(server, 'encrypt-datakey', { key_id: keyId, plain_text: plain, datakey_plain_length: '2000' }), 400, 'KMS.2102');
      expectError(await hw(server, 'encrypt-datakey', { key_id: keyId, plain_text: 'xyz', datakey_plain_length: '64' }), 400, 'KMS.2101');
      // A DEK ciphertext names its key: another key id is refused.
      const other = (await hw(server, 'create-key', { key_alias: 'hw-other' })).body.key_info.key_id;
      expectError(await hw(server, 'decrypt-datakey', { key_id: other, cipher_text: enc.body.cipher_text, datakey_cipher_length: '64' }), 400, 'KMS.2201');
    });

    it('gen-random returns random_data_length bits in hex', async () => {
      const r = await hw(server, 'gen-random', { random_data_length: '512' });
      expect(r.body.random_data).to.match(/^[0-9A-F]{128}$/);
      const r2 = await hw(server, 'gen-random', { random_data_length: 512 });
      expect(r2.body.random_data).to.have.length(128).and.not.equal(r.body.random_data);
      expect((await hw(server, 'gen-random', { random_data_length: '8192' })).body.random_data).to.have.length(2048);
      expectError(await hw(server, 'gen-random', { random_data_length: '7' }), 400, 'KMS.1801');
      expectError(await hw(server, 'gen-random', { random_data_length: '8200' }), 400, 'KMS.1801');
      expectError(await hw(server, 'gen-random', {}), 400, 'KMS.0204');
    });
  });

  describe('wire', () => {
    it('malformed JSON is KMS.0202; unknown or unbuilt actions are 404 in the error envelope', async () => {
      expectError(await hw(server, 'describe-key', '{"key_id":'), 400, 'KMS.0202');
      expectError(await hw(server, 'describe-key', '[1]'), 400, 'KMS.0202');
      for (const action of ['no-such-action', 'create-key-tag', 'create-kms-tag', 'generate-mac', 'list-quotas']) {
        expectError(await hw(server, action, {}), 404, 'APIGW.0101');
      }
      const res = await fetch(`${server.endpoint}/v1.0/${PROJECT}/kms/list-keys`, { headers: { 'X-Auth-Token': 't' } });
      expect(res.status).to.equal(404);
    });

    it('no credentials at all (no X-Auth-Token) is 403 KMS.0301', async () => {
      expectError(await hw(server, 'list-keys', {}, { none: true }), 403, 'KMS.0301');
    });
  });

  describe('shared with the AWS dialect', () => {
    it('a key and alias created through AWS are usable here, and Huawei changes are visible to AWS', async () => {
      const aws = server.client({ region: 'eu-de' });
      const created = await aws.send(new CreateKeyCommand({ Description: 'from aws' }));
      const awsKey = created.KeyMetadata!.KeyId!;
      await aws.send(new CreateAliasCommand({ AliasName: 'alias/from-aws', TargetKeyId: awsKey }));

      const info = (await hw(server, 'describe-key', { key_id: 'alias/from-aws' })).body.key_info;
      expect(info).to.include({ key_id: awsKey, key_alias: 'from-aws', key_description: 'from aws', key_state: '2' });
      expect((await hw(server, 'list-keys', {})).body.keys).to.include(awsKey);
      const enc = await hw(server, 'encrypt-data', { key_id: 'alias/from-aws', plain_text: 'both ways' });
      expect((await hw(server, 'decrypt-data', { cipher_text: enc.body.cipher_text })).body.plain_text).to.equal('both ways');

      // Huawei → AWS: the key created here, its alias, description and state.
      const listed = await aws.send(new ListKeysCommand({}));
      expect(listed.Keys!.map((k) => k.KeyId)).to.include(keyId);
      const described = await aws.send(new DescribeKeyCommand({ KeyId: 'alias/hw-app' }));
      expect(described.KeyMetadata!.KeyId).to.equal(keyId);
      expect(described.KeyMetadata!.Description).to.equal('first test key');
      const aliases = await aws.send(new ListAliasesCommand({ KeyId: keyId }));
      expect(aliases.Aliases!.map((a) => a.AliasName)).to.deep.equal(['alias/hw-app']);

      await hw(server, 'disable-key', { key_id: awsKey });
      expect((await aws.send(new DescribeKeyCommand({ KeyId: awsKey }))).KeyMetadata!.KeyState).to.equal('Disabled');
      await aws.send(new DisableKeyCommand({ KeyId: keyId }));
      expect((await hw(server, 'describe-key', { key_id: keyId })).body.key_info.key_state).to.equal('3');
      await hw(server, 'enable-key', { key_id: keyId });
    });

    it('the project id decides the region: keys of eu-de are not found through a project mapped to another region', async () => {
      const aws = server.client({ region: 'us-east-1' });
      const usKey = (await aws.send(new CreateKeyCommand({}))).KeyMetadata!.KeyId!;
      expectError(await hw(server, 'describe-key', { key_id: usKey }), 404, 'KMS.0207');
    });
  });
});
