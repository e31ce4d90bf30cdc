import * as crypto from 'node:crypto';
import { CreateKeyCommand, DecryptCommand } from '@aws-sdk/client-kms';
import { expect } from 'chai';
import { serverPerSuite, type TestServer } from '../support/server';

type Row = Record<string, any>;
const PROJECT = '0123456789abcdef0123456789abcdef';

/** Sign, verify, get-publickey and RSA encryption of the Huawei dialect, on the operations of the asymmetric keys. */
describe('Huawei dialect: asymmetric keys, sign, verify, get-publickey, RSA encrypt-data / decrypt-data', function () {
  this.timeout(30_000);
  let server: TestServer;

  serverPerSuite({ env: { P11KMS_HUAWEI_PROJECTS: `${PROJECT}=us-east-1:111122223333` } }, (started) => (server = started));

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
  it('RSA ENCRYPT_DECRYPT keys from create-key: encrypt-data / decrypt-data with encryption_algorithm RSAES_OAEP_SHA_256 and RSAES_OAEP_SHA_1', async () => {
    const created = await huawei('create-key', { key_alias: 'rsa-encrypt', key_spec: 'RSA_2048', key_usage: 'ENCRYPT_DECRYPT' });
    expect(created.status, JSON.stringify(created.json)).to.equal(200);
    const keyId = created.json.key_info.key_id as string;
    const text = 'encrypted under an RSA key, é';
    for (const [algorithm, oaepHash] of [
      ['RSAES_OAEP_SHA_256', 'sha256'],
      ['RSAES_OAEP_SHA_1', 'sha1'],
    ] as const) {
      const enc = await huawei('encrypt-data', { key_id: keyId, plain_text: text, encryption_algorithm: algorithm });
      expect(enc.status, JSON.stringify(enc.json)).to.equal(200);
      expect(enc.json.key_id).to.equal(keyId);
      // The bare RSAES-OAEP output (256 bytes), within the cipher_text pattern.
      expect(enc.json.cipher_text).to.match(/^[0-9a-zA-Z+/=]{188,5648}$/);
      const blob = Buffer.from(enc.json.cipher_text, 'base64');
      expect(blob).to.have.length(256);
      const dec = await huawei('decrypt-data', { cipher_text: enc.json.cipher_text, key_id: keyId, encryption_algorithm: algorithm });
      expect(dec.json, JSON.stringify(dec.json)).to.deep.equal({ key_id: keyId, plain_text: text });
      // The AWS API opens the same ciphertext, and a ciphertext made with the public key opens here.
      const viaAws = await server.client().send(new DecryptCommand({ CiphertextBlob: blob, KeyId: keyId, EncryptionAlgorithm: algorithm }));
      expect(Buffer.from(viaAws.Plaintext!).toString('utf8')).to.equal(text);
      const { json: pub } = await huawei('get-publickey', { key_id: keyId });
      const local = crypto.publicEncrypt({ key: crypto.createPublicKey(pub.public_key), padding: crypto.constants.RSA_PKCS1_OAEP_PADDING, oaepHash }, Buffer.from('made with the public key'));
      const opened = await huawei('decrypt-data', { cipher_text: local.toString('base64'), key_id: keyId, encryption_algorithm: algorithm });
      expect(opened.json.plain_text, JSON.stringify(opened.json)).to.equal('made with the public key');
    }

    const enc = await huawei('encrypt-data', { key_id: keyId, plain_text: text, encryption_algorithm: 'RSAES_OAEP_SHA_256' });
    const code = (reply: { status: number; json: Row }) => `${reply.status} ${reply.json.error?.error_code}`;
    // decrypt-data: key_id is required, no encryption_context, the algorithm must be the one used.
    expect(code(await huawei('decrypt-data', { cipher_text: enc.json.cipher_text, encryption_algorithm: 'RSAES_OAEP_SHA_256' }))).to.equal('400 KMS.0204');
    expect(code(await huawei('decrypt-data', { cipher_text: enc.json.cipher_text, key_id: keyId, encryption_algorithm: 'RSAES_OAEP_SHA_256', encryption_context: { a: 'b' } }))).to.equal('400 KMS.0208');
    expect(code(await huawei('decrypt-data', { cipher_text: enc.json.cipher_text, key_id: keyId, encryption_algorithm: 'RSAES_OAEP_SHA_1' }))).to.equal('400 KMS.2201');
    expect(code(await huawei('decrypt-data', { cipher_text: enc.json.cipher_text, key_id: keyId }))).to.equal('400 KMS.2201');
    // encrypt-data: the algorithm must suit the key; RSAES_OAEP_SHA_256 with RSA_2048 takes at most 190 bytes.
    const noAlgorithm = await huawei('encrypt-data', { key_id: keyId, plain_text: text });
    expect(code(noAlgorithm)).to.equal('400 KMS.0308');
    expect(noAlgorithm.json.error.error_msg).to.contain('RSA ENCRYPT_DECRYPT keys RSAES_OAEP_SHA_256 or RSAES_OAEP_SHA_1').and.not.contain('does not support');
    expect(code(await huawei('encrypt-data', { key_id: keyId, plain_text: 'x'.repeat(191), encryption_algorithm: 'RSAES_OAEP_SHA_256' }))).to.equal('400 KMS.2101');
    expect(code(await huawei('encrypt-data', { key_id: keyId, plain_text: 'x'.repeat(190), encryption_algorithm: 'RSAES_OAEP_SHA_256' }))).to.equal('200 undefined');
    expect(code(await huawei('encrypt-data', { key_id: keyId, plain_text: 'x', encryption_algorithm: 'RSAES_OAEP_SHA_256', encryption_context: { a: 'b' } }))).to.equal('400 KMS.0208');
    expect(code(await huawei('encrypt-data', { key_id: keyId, plain_text: 'x', encryption_algorithm: 'SM2_ENCRYPT' }))).to.equal('400 KMS.0308');
    expect(code(await huawei('encrypt-data', { key_id: keyId, plain_text: 'x', encryption_algorithm: 'RSAES_PKCS1' }))).to.equal('400 KMS.0308');
    const aes = (await huawei('create-key', { key_alias: 'rsa-encrypt-aes' })).json.key_info.key_id as string;
    const onAes = await huawei('encrypt-data', { key_id: aes, plain_text: 'x', encryption_algorithm: 'RSAES_OAEP_SHA_256' });
    expect(code(onAes)).to.equal('400 KMS.0308');
    expect(onAes.json.error.error_msg).to.match(/^Invalid parameter: encryption_algorithm RSAES_OAEP_SHA_256 does not match the key \(key_spec AES_256\)/);
  });
});
