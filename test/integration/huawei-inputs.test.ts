import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { expect } from 'chai';
import { expectHuaweiError as expectError, huaweiClient, PROJECT, type Row } from '../support/huawei-client';
import { serverPerSuite, type TestServer } from '../support/server';

/**
 * How the Huawei dialect reads what a client sends: members, lengths and texts that must be
 * kept or refused exactly (encryption contexts, Base64 members, grant operations, project ids,
 * sequence, plain_text, key_description), over HTTP against the real server and token.
 */

/** An AK/SK pair in the credentials file: permissive mode still verifies listed access keys. */
const AK = { ak: 'HWINPUTSAK', sk: 'inputs-secret-key' };

describe('Huawei dialect: reading request members', function () {
  this.timeout(30_000);
  let server: TestServer;
  let dir: string;
  let aesKey: string;

  serverPerSuite(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'p11kms-hw-inputs-'));
    const credentialsFile = path.join(dir, 'credentials.json');
    fs.writeFileSync(credentialsFile, JSON.stringify({ accessKeys: [{ accessKeyId: AK.ak, secretAccessKey: AK.sk, accountId: '111122223333' }] }));
    return { credentialsFile };
  }, (started) => (server = started));
  before(async () => {
    aesKey = await newKey('in-aes');
  });
  after(() => fs.rmSync(dir, { recursive: true, force: true }));

  const { hw, newKey } = huaweiClient(() => server.endpoint);

  describe('encryption_context', () => {
    // JSON.parse makes "__proto__" an own member; the request text is written by hand so that
    // JSON.stringify of a test object cannot drop it first.
    const withContext = (fields: string, context: string) => `{${fields},"encryption_context":${context}}`;

    it('binds a ciphertext to a "__proto__" pair like any other (encrypt-data / decrypt-data)', async () => {
      const enc = await hw('encrypt-data', withContext(`"key_id":"${aesKey}","plain_text":"secret"`, '{"__proto__":"tenant-A"}'));
      expect(enc.status, enc.raw).to.equal(200);
      const cipher = enc.body.cipher_text as string;
      const opened = await hw('decrypt-data', withContext(`"cipher_text":"${cipher}"`, '{"__proto__":"tenant-A"}'));
      expect(opened.body, opened.raw).to.deep.equal({ key_id: aesKey, plain_text: 'secret' });
      expectError(await hw('decrypt-data', { cipher_text: cipher }), 400, 'KMS.2201');
      expectError(await hw('decrypt-data', withContext(`"cipher_text":"${cipher}"`, '{"__proto__":"tenant-B"}')), 400, 'KMS.2201');

      const both = await hw('encrypt-data', withContext(`"key_id":"${aesKey}","plain_text":"secret"`, '{"__proto__":"tenant-A","a":"b"}'));
      expectError(await hw('decrypt-data', { cipher_text: both.body.cipher_text, encryption_context: { a: 'b' } }), 400, 'KMS.2201');
      const bothOpened = await hw('decrypt-data', withContext(`"cipher_text":"${both.body.cipher_text}"`, '{"a":"b","__proto__":"tenant-A"}'));
      expect(bothOpened.body.plain_text, bothOpened.raw).to.equal('secret');
    });

    it('binds data keys to a "__proto__" pair too (create-datakey / decrypt-datakey)', async () => {
      const dk = await hw('create-datakey', withContext(`"key_id":"${aesKey}","datakey_length":"256"`, '{"__proto__":"tenant-A"}'));
      expect(dk.status, dk.raw).to.equal(200);
      const request = (context: string) => withContext(`"key_id":"${aesKey}","cipher_text":"${dk.body.cipher_text}","datakey_cipher_length":"32"`, context);
      expect((await hw('decrypt-datakey', request('{"__proto__":"tenant-A"}'))).body.data_key).to.equal(dk.body.plain_text);
      expectError(await hw('decrypt-datakey', request('{"__proto__":"tenant-B"}')), 400, 'KMS.2201');
      expectError(await hw('decrypt-datakey', request('{}')), 400, 'KMS.2201');
    });
  });
  describe('create-grant operations', () => {
    it('refuses names of Object.prototype members as operations, alone or next to a valid one, without leaking JavaScript text', async () => {
      const base = { key_id: aesKey, grantee_principal: 'carol' };
      for (const name of ['constructor', '__proto__', 'toString', 'valueOf', 'hasOwnProperty', 'isPrototypeOf', '__defineGetter__']) {
        for (const operations of [[name], ['encrypt-data', name]]) {
          const reply = await hw('create-grant', { ...base, operations });
          expectError(reply, 400, 'KMS.0308');
          expect(reply.body.error.error_msg, reply.raw).to.match(/^Invalid parameter\. operations must list some of create-datakey, /);
          expect(reply.body.error.error_msg).not.to.match(/native code|\[object|arn:|KeySpec/);
        }
      }
    });
  });
  describe('project_id', () => {
    it('maps ids named like Object.prototype members to the default account and region, as any unlisted id', async () => {
      for (const project of ['constructor', '__proto__', 'toString', 'valueOf', 'hasOwnProperty']) {
        const random = await hw('gen-random', { random_data_length: '64' }, project);
        expect(random.status, `${project}: ${random.raw}`).to.equal(200);
        expect(random.body.random_data).to.match(/^[0-9A-F]{16}$/);
        const described = await hw('describe-key', { key_id: aesKey }, project);
        expect(described.body.key_info?.key_id, `${project}: ${described.raw}`).to.equal(aesKey);
      }
    });
  });
  describe('names looked up in tables', () => {
    it('create-key: a key_spec naming an Object.prototype member is an unsupported spec (KMS.0308), not a 500', async () => {
      for (const spec of ['constructor', 'toString', '__proto__', 'hasOwnProperty']) {
        const reply = await hw('create-key', { key_alias: `in-spec-${spec.replace(/_/g, '')}`, key_spec: spec });
        expectError(reply, 400, 'KMS.0308');
        expect(reply.body.error.error_msg).to.contain('AES_256, RSA_2048');
      }
    });

    it('AK/SK: an X-Sdk-Date that is no date (month 13, day 32, hour 24) is malformed, not "more than 15 minutes" off', async () => {
      const year = new Date().getUTCFullYear();
      for (const sdkDate of [`${year}1301T000000Z`, `${year}0132T000000Z`, `${year}0101T240000Z`, `${year}0101T006000Z`]) {
        const res = await fetch(`${server.endpoint}/v1.0/${PROJECT}/kms/list-keys`, {
          method: 'POST',
          headers: { 'Content-Type': 'application/json', 'X-Sdk-Date': sdkDate, Authorization: `SDK-HMAC-SHA256 Access=${AK.ak}, SignedHeaders=x-sdk-date, Signature=${'0'.repeat(64)}` },
          body: '{}',
        });
        const raw = await res.text();
        const message = expectError({ status: res.status, body: JSON.parse(raw) as Row, raw }, 401, 'APIGW.0301');
        expect(message, sdkDate).to.equal('Incorrect IAM authentication information: X-Sdk-Date is missing or malformed.');
      }
    });

    it('AK/SK: SignedHeaders naming a header the request lacks, such as constructor, is a failed signature (401), not a 500', async () => {
      const sdkDate = new Date().toISOString().replace(/[-:]/g, '').replace(/\.\d{3}/, '');
      for (const name of ['constructor', '__proto__']) {
        const res = await fetch(`${server.endpoint}/v1.0/${PROJECT}/kms/list-keys`, {
          method: 'POST',
          headers: {
            'Content-Type': 'application/json',
            'X-Sdk-Date': sdkDate,
            // The headers are read before the signature is computed: any well-formed signature will do.
            Authorization: `SDK-HMAC-SHA256 Access=${AK.ak}, SignedHeaders=${name};x-sdk-date, Signature=${'0'.repeat(64)}`,
          },
          body: '{}',
        });
        const raw = await res.text();
        expectError({ status: res.status, body: JSON.parse(raw) as Row, raw }, 401, 'APIGW.0301');
      }
    });
  });
  describe('Base64 members', () => {
    it('verify: an empty signature is an invalid parameter (400 KMS.0308) on RSA and EC keys alike, not a 500', async () => {
      const digest = Buffer.alloc(32, 1).toString('base64');
      for (const [spec, algorithm] of [
        ['RSA_2048', 'RSASSA_PSS_SHA_256'],
        ['EC_P256', 'ECDSA_SHA_256'],
      ] as const) {
        const keyId = await newKey(`in-verify-${spec.toLowerCase()}`, { key_spec: spec, key_usage: 'SIGN_VERIFY' });
        const reply = await hw('verify', { key_id: keyId, message: digest, signature: '', signing_algorithm: algorithm });
        expectError(reply, 400, 'KMS.0308');
        expect(reply.body.error.error_msg, spec).to.equal('Invalid parameter. signature must be non-empty Base64.');
        expectError(await hw('sign', { key_id: keyId, message: '', signing_algorithm: algorithm }), 400, 'KMS.0308');
      }
      const external = await newKey('in-import-empty', { origin: 'external' });
      expectError(await hw('import-key-material', { key_id: external, import_token: '', encrypted_key_material: 'AAAA' }), 400, 'KMS.0308');
      expectError(await hw('import-key-material', { key_id: external, import_token: 'AAAA', encrypted_key_material: '' }), 400, 'KMS.0308');
    });
  });
  describe('lengths', () => {
    it('sequence is 36 bytes of UTF-8, not 36 characters (KMS.0206 otherwise)', async () => {
      const ok = await hw('gen-random', { random_data_length: '8', sequence: '919c82d4-8046-4722-9094-35c3c6524cff' });
      expect(ok.body.sequence, ok.raw).to.equal('919c82d4-8046-4722-9094-35c3c6524cff');
      // 36 characters, 72 bytes.
      expectError(await hw('gen-random', { random_data_length: '8', sequence: 'é'.repeat(36) }), 400, 'KMS.0206');
      // 18 characters, 36 bytes.
      const wide = await hw('gen-random', { random_data_length: '8', sequence: 'é'.repeat(18) });
      expect(wide.body.sequence, wide.raw).to.equal('é'.repeat(18));
      expectError(await hw('gen-random', { random_data_length: '8', sequence: 'a'.repeat(35) }), 400, 'KMS.0206');
    });

    it('key_description allows 255 characters counted as code points, not UTF-16 units (KMS.1103 beyond)', async () => {
      const emoji = '\u{1F600}';
      const created = await hw('create-key', { key_alias: 'in-desc', key_description: emoji.repeat(128) });
      expect(created.status, created.raw).to.equal(200);
      const keyId = created.body.key_info.key_id as string;
      expect((await hw('describe-key', { key_id: keyId })).body.key_info.key_description).to.equal(emoji.repeat(128));
      const updated = await hw('update-key-description', { key_id: keyId, key_description: emoji.repeat(255) });
      expect(updated.status, updated.raw).to.equal(200);
      expectError(await hw('update-key-description', { key_id: keyId, key_description: emoji.repeat(256) }), 400, 'KMS.1103');
      expectError(await hw('create-key', { key_alias: 'in-desc-long', key_description: 'd'.repeat(256) }), 400, 'KMS.1103');
    });
  });
  describe('plain_text as text', () => {
    it('encrypt-data refuses plain_text that is not well-formed Unicode (KMS.2101) and keeps a leading BOM', async () => {
      for (const bad of ['\ud800', 'a\udc00b', 'x\ud83d']) {
        const reply = await hw('encrypt-data', { key_id: aesKey, plain_text: bad });
        expectError(reply, 400, 'KMS.2101');
        expect(reply.body.error.error_msg).to.contain('well-formed');
      }
      for (const good of ['\ufeffstarts with a BOM', '\u{1F600} paired surrogates', '\ufffd']) {
        const enc = await hw('encrypt-data', { key_id: aesKey, plain_text: good });
        expect(enc.status, enc.raw).to.equal(200);
        expect((await hw('decrypt-data', { cipher_text: enc.body.cipher_text })).body.plain_text).to.equal(good);
      }
    });

    it('decrypt-data refuses a ciphertext whose plaintext is not UTF-8 text (KMS.2201) instead of answering U+FFFD', async () => {
      // A data key of bytes that are not UTF-8, encrypted by encrypt-datakey; its hex cipher_text
      // is the same envelope, re-encoded to the Base64 decrypt-data takes.
      const dek = Buffer.alloc(32, 0xff);
      const digest = createHash('sha256').update(dek).digest('hex');
      const enc = await hw('encrypt-datakey', { key_id: aesKey, plain_text: dek.toString('hex') + digest, datakey_plain_length: '32' });
      expect(enc.status, enc.raw).to.equal(200);
      const asBase64 = Buffer.from(enc.body.cipher_text as string, 'hex').toString('base64');
      const reply = await hw('decrypt-data', { cipher_text: asBase64 });
      expectError(reply, 400, 'KMS.2201');
      expect(reply.raw).not.to.contain('\ufffd').and.not.to.contain('\\ufffd');
      // The data key itself still opens where it belongs.
      expect((await hw('decrypt-datakey', { key_id: aesKey, cipher_text: enc.body.cipher_text, datakey_cipher_length: '32' })).body.data_key).to.equal(dek.toString('hex').toUpperCase());
    });
  });
});
