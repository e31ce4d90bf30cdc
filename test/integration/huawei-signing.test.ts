import * as crypto from 'node:crypto';
import { CreateKeyCommand } from '@aws-sdk/client-kms';
import { expect } from 'chai';
import { TestServer } from '../support/server';

type Row = Record<string, any>;
const PROJECT = '0123456789abcdef0123456789abcdef';

/** Sign, verify and get-publickey of the Huawei dialect, on the operations of the asymmetric keys. */
describe('Huawei dialect: asymmetric keys, sign, verify, get-publickey', function () {
  this.timeout(30_000);
  let server: TestServer;

  before(async () => {
    server = await TestServer.start({ env: { P11KMS_HUAWEI_PROJECTS: `${PROJECT}=us-east-1:111122223333` } });
  });
  after(async () => server?.stop());

  async function huawei(action: string, body: unknown): Promise<{ status: number; json: Row }> {
    const res = await fetch(`${server.endpoint}/v1.0/${PROJECT}/kms/${action}`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json', 'X-Auth-Token': 'permissive-token' },
      body: JSON.stringify(body),
    });
    return { status: res.status, json: (await res.json()) as Row };
  }

  const message = Buffer.from('a message signed through the Huawei dialect');

  for (const [keySpec, algorithm, hash, pss] of [
    ['RSA_2048', 'RSASSA_PSS_SHA_256', 'sha256', true],
    ['RSA_3072', 'RSASSA_PKCS1_V1_5_SHA_384', 'sha384', false],
    ['EC_P256', 'ECDSA_SHA_256', 'sha256', false],
    ['EC_P384', 'ECDSA_SHA_384', 'sha384', false],
  ] as const) {
    it(`${keySpec}: create-key, sign (DIGEST by default, and RAW), verify, and a signature node:crypto accepts with the PEM from get-publickey`, async () => {
      const created = await huawei('create-key', { key_alias: `sign-${keySpec.toLowerCase()}`, key_spec: keySpec, key_usage: 'SIGN_VERIFY' });
      expect(created.status, JSON.stringify(created.json)).to.equal(200);
      const keyId = created.json.key_info.key_id as string;
      const described = await huawei('describe-key', { key_id: keyId });
      expect(described.json.key_info).to.include({ key_spec: keySpec, key_usage: 'SIGN_VERIFY' });

      const { json: pub } = await huawei('get-publickey', { key_id: keyId });
      expect(pub.key_id).to.equal(keyId);
      expect(pub.public_key).to.match(/^-----BEGIN PUBLIC KEY-----\n/);
      const publicKey = crypto.createPublicKey(pub.public_key);
      const options = pss ? { key: publicKey, padding: crypto.constants.RSA_PKCS1_PSS_PADDING, saltLength: Number(hash.slice(3)) / 8 } : publicKey;

      const digest = crypto.createHash(hash).update(message).digest();
      const signedDigest = await huawei('sign', { key_id: keyId, message: digest.toString('base64'), signing_algorithm: algorithm });
      expect(signedDigest.status, JSON.stringify(signedDigest.json)).to.equal(200);
      expect(crypto.verify(hash, message, options, Buffer.from(signedDigest.json.signature, 'base64')), 'DIGEST is the default message_type').to.equal(true);

      const signedRaw = await huawei('sign', { key_id: keyId, message: message.toString('base64'), signing_algorithm: algorithm, message_type: 'RAW' });
      expect(crypto.verify(hash, message, options, Buffer.from(signedRaw.json.signature, 'base64'))).to.equal(true);

      const ok = await huawei('verify', { key_id: keyId, message: message.toString('base64'), signature: signedRaw.json.signature, signing_algorithm: algorithm, message_type: 'RAW' });
      expect(ok.json).to.deep.equal({ key_id: keyId, signature_valid: 'true' });
      const bad = await huawei('verify', { key_id: keyId, message: Buffer.from('other').toString('base64'), signature: signedRaw.json.signature, signing_algorithm: algorithm, message_type: 'RAW' });
      expect(bad.status).to.equal(200);
      expect(bad.json.signature_valid).to.equal('false');
    });
  }

  it('signs with a key created through the AWS dialect, and refuses what the token or the key cannot do', async () => {
    const { KeyMetadata } = await server.client().send(new CreateKeyCommand({ KeySpec: 'ECC_NIST_P256', KeyUsage: 'SIGN_VERIFY' }));
    const signed = await huawei('sign', { key_id: KeyMetadata!.KeyId, message: crypto.createHash('sha256').update(message).digest('base64'), signing_algorithm: 'ECDSA_SHA_256' });
    expect(signed.status).to.equal(200);
    expect(signed.json.key_id).to.equal(KeyMetadata!.KeyId);

    const sm2 = await huawei('create-key', { key_alias: 'sm2-key', key_spec: 'SM2', key_usage: 'SIGN_VERIFY' });
    expect(sm2.status).to.equal(400);
    expect(sm2.json.error.error_code).to.equal('KMS.0308');
    const wrongUsage = await huawei('create-key', { key_alias: 'ec-encrypt', key_spec: 'EC_P256', key_usage: 'ENCRYPT_DECRYPT' });
    expect(wrongUsage.json.error.error_code).to.equal('KMS.0308');
    const symmetric = await huawei('create-key', { key_alias: 'plain-aes' });
    const noPublicKey = await huawei('get-publickey', { key_id: symmetric.json.key_info.key_id });
    expect(noPublicKey.status).to.equal(400);
    const wrongAlgorithm = await huawei('sign', { key_id: KeyMetadata!.KeyId, message: Buffer.alloc(48).toString('base64'), signing_algorithm: 'ECDSA_SHA_384' });
    expect(wrongAlgorithm.json.error.error_code).to.equal('KMS.0308');
    const notBase64 = await huawei('sign', { key_id: KeyMetadata!.KeyId, message: 'not base64!', signing_algorithm: 'ECDSA_SHA_256' });
    expect(notBase64.json.error.error_code).to.equal('KMS.0308');
  });
});
