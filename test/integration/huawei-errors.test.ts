import { constants, createPublicKey, publicEncrypt } from 'node:crypto';
import { expect } from 'chai';
import { expectHuaweiError as expectError, huaweiClient, type Reply, type Row } from '../support/huawei-client';
import { serverPerSuite, type TestServer } from '../support/server';

/**
 * The errors the Huawei dialect answers for failures of the shared operations: the code that
 * fits the key's real state, and messages in this dialect's terms (its member names, key specs
 * and key ids, never AWS ARNs or AWS member names), over HTTP against the real server and token.
 */

/** What no Huawei error_msg may contain: AWS ARNs, AWS member names and key specs, JavaScript text. */
const AWS_TERMS = /arn:aws|GranteePrincipal|RetiringPrincipal|validTo|ValidTo|KeySpec|KeyUsage|SYMMETRIC_DEFAULT|ECC_NIST|EncryptionContext|ImportType|native code|\[object/;

describe('Huawei dialect: error codes and messages of the shared operations', function () {
  this.timeout(30_000);
  let server: TestServer;

  serverPerSuite({}, (started) => (server = started));

  const { hw, newKey } = huaweiClient(() => server.endpoint);

  /**
   * Imports `material` into an external key, wrapped with RSAES_OAEP_SHA_256 as import-key-material
   * expects; `between` runs after get-parameters-for-import.
   */
  async function importMaterial(keyId: string, material: Buffer, extra: Row = {}, between?: () => Promise<unknown>): Promise<Reply> {
    const params = await hw('get-parameters-for-import', { key_id: keyId, wrapping_algorithm: 'RSAES_OAEP_SHA_256' });
    expect(params.status, params.raw).to.equal(200);
    const publicKey = createPublicKey({ key: Buffer.from(params.body.public_key, 'base64'), format: 'der', type: 'spki' });
    const wrapped = publicEncrypt({ key: publicKey, padding: constants.RSA_PKCS1_OAEP_PADDING, oaepHash: 'sha256' }, material);
    await between?.();
    return hw('import-key-material', { key_id: keyId, import_token: params.body.import_token, encrypted_key_material: wrapped.toString('base64'), ...extra });
  }

  describe('key states', () => {
    it('a key waiting for import (key_state 5) is answered as such, not as scheduled for deletion', async () => {
      const keyId = await newKey('err-pending-import', { origin: 'external' });
      expect((await hw('describe-key', { key_id: keyId })).body.key_info.key_state).to.equal('5');
      const digest = Buffer.alloc(32, 1).toString('base64');
      for (const [action, body] of [
        ['encrypt-data', { key_id: keyId, plain_text: 'x' }],
        ['create-datakey', { key_id: keyId }],
        ['create-datakey-without-plaintext', { key_id: keyId, datakey_length: '256' }],
        ['sign', { key_id: keyId, message: digest, signing_algorithm: 'RSASSA_PSS_SHA_256' }],
        ['get-publickey', { key_id: keyId }],
      ] as const) {
        const message = expectError(await hw(action, body), 400, 'KMS.0308');
        expect(message, action).to.match(/waiting for its key material to be imported \(key_state 5\)/);
        expect(message, action).not.to.match(/deletion/i);
      }

      // Material imported, used, then deleted again: its ciphertexts answer the same way.
      expect((await importMaterial(keyId, Buffer.alloc(32, 7))).status).to.equal(200);
      const enc = await hw('encrypt-data', { key_id: keyId, plain_text: 'before deletion' });
      expect(enc.status, enc.raw).to.equal(200);
      expect((await hw('delete-imported-key-material', { key_id: keyId })).status).to.equal(200);
      expect(expectError(await hw('decrypt-data', { cipher_text: enc.body.cipher_text }), 400, 'KMS.0308')).to.match(/key_state 5/);
      // The state-specific codes of the other states are unchanged.
      await hw('schedule-key-deletion', { key_id: keyId, pending_days: '7' });
      expectError(await hw('encrypt-data', { key_id: keyId, plain_text: 'x' }), 400, 'KMS.0210');
    });
  });
  describe('messages in Huawei terms', () => {
    /** The error's message, checked for AWS terms. */
    function huaweiMessage(reply: Reply, status: number, code: string): string {
      const message = expectError(reply, status, code);
      expect(message, reply.raw).not.to.match(AWS_TERMS);
      return message;
    }

    it('get-publickey of an AES_256 key names its Huawei key_spec, not an ARN and SYMMETRIC_DEFAULT', async () => {
      const keyId = await newKey('err-pub-aes');
      expect(huaweiMessage(await hw('get-publickey', { key_id: keyId }), 400, 'KMS.0308')).to.equal(
        'Invalid parameter: a key of key_spec AES_256 has no public key (RSA and EC keys have one).',
      );
    });

    it('create-grant names grantee_principal and Huawei operations, not GranteePrincipal, ARNs or AWS operations', async () => {
      const keyId = await newKey('err-grant');
      const principal = await hw('create-grant', { key_id: keyId, grantee_principal: 'abc', grantee_principal_type: 'domain', operations: ['describe-key'] });
      expect(huaweiMessage(principal, 400, 'KMS.0308')).to.equal('Invalid parameter: grantee_principal domain abc is not a user or account this service knows.');
      const ec = await newKey('err-grant-ec', { key_spec: 'EC_P256', key_usage: 'SIGN_VERIFY' });
      const operations = await hw('create-grant', { key_id: ec, grantee_principal: 'alice', operations: ['encrypt-data'] });
      expect(huaweiMessage(operations, 400, 'KMS.0308')).to.equal(
        'Invalid parameter: operations encrypt-datakey, encrypt-data do not apply to a key of key_spec EC_P256 and key_usage SIGN_VERIFY.',
      );
    });

    it('import-key-material names expiration_time and AES_256, not validTo and SYMMETRIC_DEFAULT', async () => {
      const keyId = await newKey('err-import', { origin: 'external' });
      expect(huaweiMessage(await importMaterial(keyId, Buffer.alloc(16, 1)), 400, 'KMS.0308')).to.equal(
        'Invalid parameter: the key material is not of a length key_spec AES_256 takes (32 bytes).',
      );
      const tooLate = String(Math.floor(Date.now() / 1000) + 400 * 86_400);
      expect(huaweiMessage(await importMaterial(keyId, Buffer.alloc(32, 1), { expiration_time: tooLate }), 400, 'KMS.0308')).to.equal(
        'Invalid parameter: expiration_time must be at most 365 days from now.',
      );
      expect((await importMaterial(keyId, Buffer.alloc(32, 1))).status).to.equal(200);
      huaweiMessage(await importMaterial(keyId, Buffer.alloc(32, 2)), 400, 'KMS.0308');
      // A key state import refuses: OTC's KMS.0310 and its message, no ARN.
      const scheduled = await importMaterial(keyId, Buffer.alloc(32, 1), {}, () => hw('schedule-key-deletion', { key_id: keyId, pending_days: '7' }));
      expect(huaweiMessage(scheduled, 400, 'KMS.0310')).to.equal('The key is not in Pending import state.');
    });

    it('sign with an algorithm of another curve says the algorithm does not match the key, not that the usage forbids it', async () => {
      const ec = await newKey('err-sign-ec', { key_spec: 'EC_P256', key_usage: 'SIGN_VERIFY' });
      const digest = Buffer.alloc(48, 1).toString('base64');
      expect(huaweiMessage(await hw('sign', { key_id: ec, message: digest, signing_algorithm: 'ECDSA_SHA_384' }), 400, 'KMS.0308')).to.equal(
        'Invalid parameter: signing_algorithm ECDSA_SHA_384 does not match the key (key_spec EC_P256).',
      );
      const verify = await hw('verify', { key_id: ec, message: digest, signature: 'AAAA', signing_algorithm: 'RSASSA_PSS_SHA_384' });
      expect(huaweiMessage(verify, 400, 'KMS.0308')).to.match(/^Invalid parameter: signing_algorithm RSASSA_PSS_SHA_384 does not match the key/);
    });

    it('create-datakey and create-datakey-without-plaintext on an RSA ENCRYPT_DECRYPT key: 400 KMS.0308 saying data keys need AES_256', async () => {
      const rsa = await newKey('err-datakey-rsa', { key_spec: 'RSA_2048', key_usage: 'ENCRYPT_DECRYPT' });
      for (const action of ['create-datakey', 'create-datakey-without-plaintext']) {
        const message = huaweiMessage(await hw(action, { key_id: rsa, datakey_length: '256' }), 400, 'KMS.0308');
        expect(message, action).to.equal('Invalid parameter: data keys are made and encrypted under AES_256 keys only, not under a key of key_spec RSA_2048.');
      }
      // The key is healthy: its public key is still there.
      expect((await hw('get-publickey', { key_id: rsa })).status).to.equal(200);
    });

    it('import-key-material of empty (0-byte) key material: 400 KMS.0308, not a 500', async () => {
      const keyId = await newKey('err-import-empty', { origin: 'external' });
      expect(huaweiMessage(await importMaterial(keyId, Buffer.alloc(0)), 400, 'KMS.0308')).to.match(/length key_spec AES_256 takes/);
      expect((await hw('describe-key', { key_id: keyId })).body.key_info.key_state).to.equal('5');
    });
  });
});
