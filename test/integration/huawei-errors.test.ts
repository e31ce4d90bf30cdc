import { constants, createPublicKey, publicEncrypt } from 'node:crypto';
import { expect } from 'chai';
import { TestServer } from '../support/server';

/**
 * The errors the Huawei dialect answers for failures of the shared operations: the code that
 * fits the key's real state, and messages in this dialect's terms (its member names, key specs
 * and key ids, never AWS ARNs or AWS member names), over HTTP against the real server and token.
 */

type Row = Record<string, any>;
interface Reply {
  status: number;
  body: Row;
  raw: string;
}

const PROJECT = '0123456789abcdef0123456789abcdef';

describe('Huawei dialect: error codes and messages of the shared operations', function () {
  this.timeout(30_000);
  let server: TestServer;

  before(async () => {
    server = await TestServer.start();
  });
  after(async () => server?.stop());

  async function hw(action: string, body: unknown): Promise<Reply> {
    const res = await fetch(`${server.endpoint}/v1.0/${PROJECT}/kms/${action}`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json', 'X-Auth-Token': 'permissive-token' },
      body: JSON.stringify(body),
    });
    const raw = await res.text();
    return { status: res.status, body: raw ? (JSON.parse(raw) as Row) : {}, raw };
  }

  function expectError(reply: Reply, status: number, code: string): string {
    expect(reply.status, reply.raw).to.equal(status);
    expect(Object.keys(reply.body)).to.deep.equal(['error']);
    expect(reply.body.error.error_code, reply.raw).to.equal(code);
    expect(reply.body.error.error_msg).to.be.a('string').and.not.match(/\n\s+at /);
    return reply.body.error.error_msg as string;
  }

  async function newKey(alias: string, extra: Row = {}): Promise<string> {
    const created = await hw('create-key', { key_alias: alias, ...extra });
    expect(created.status, created.raw).to.equal(200);
    return created.body.key_info.key_id as string;
  }

  /** Imports `material` into an external key, wrapped with RSAES_OAEP_SHA_256 as import-key-material expects. */
  async function importMaterial(keyId: string, material: Buffer, extra: Row = {}): Promise<Reply> {
    const params = await hw('get-parameters-for-import', { key_id: keyId, wrapping_algorithm: 'RSAES_OAEP_SHA_256' });
    expect(params.status, params.raw).to.equal(200);
    const publicKey = createPublicKey({ key: Buffer.from(params.body.public_key, 'base64'), format: 'der', type: 'spki' });
    const wrapped = publicEncrypt({ key: publicKey, padding: constants.RSA_PKCS1_OAEP_PADDING, oaepHash: 'sha256' }, material);
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
});
