/**
 * The default SoftHSM2 profile makes ECDSA signatures and verifications, their C_xInit
 * included, on crypto threads (profile `cryptoThreads`, `cryptoThreadMechanisms`,
 * src/custody/crypto-threads.ts) instead of the event loop; RSA stays on libuv's pool. What a
 * user sees must not change, on either path: many clients at once on one key get signatures
 * node:crypto accepts, KMS's answers to signatures that do not verify, RSA plaintexts back,
 * and /metrics still counts every C_xInit and C_x the token made, each with its outcome.
 */
import * as crypto from 'node:crypto';
import { DecryptCommand, GetPublicKeyCommand, type KMSClient, SignCommand, type SigningAlgorithmSpec, VerifyCommand } from '@aws-sdk/client-kms';
import { expect } from 'chai';
import { createdKey, expectKmsError, metricSample, serverPerSuite, type TestServer } from '../support/server';

const CLIENTS = 16;

describe('crypto threads: ECDSA calls off the event loop, RSA on the pool, answers and metrics as before', function () {
  this.timeout(120_000);
  let server: TestServer;
  let kms: KMSClient;
  // No audit digest during the suite: the audit signer's own C_SignInit would blur the counts.
  serverPerSuite({ env: { P11KMS_AUDIT_UNSIGNED_MAX_SECONDS: '3600' } }, (started, client) => ((server = started), (kms = client)));

  /** The `function`'s token calls with `outcome` counted so far (the call histogram's count). */
  async function tokenCalls(fn: string, outcome: 'ok' | 'error'): Promise<number> {
    const metrics = await (await fetch(`${server.endpoint}/metrics`)).text();
    return metricSample(metrics, `p11kms_token_call_duration_seconds_count{function="${fn}",outcome="${outcome}"}`) ?? 0;
  }

  async function publicKeyOf(keyId: string): Promise<crypto.KeyObject> {
    const { PublicKey } = await kms.send(new GetPublicKeyCommand({ KeyId: keyId }));
    return crypto.createPublicKey({ key: Buffer.from(PublicKey!), format: 'der', type: 'spki' });
  }

  const cases: Array<{ spec: string; algorithm: SigningAlgorithmSpec; check: (key: crypto.KeyObject, message: Buffer, signature: Buffer) => boolean }> = [
    { spec: 'ECC_NIST_P256', algorithm: 'ECDSA_SHA_256', check: (key, message, signature) => crypto.verify('sha256', message, key, signature) },
    { spec: 'RSA_2048', algorithm: 'RSASSA_PSS_SHA_256', check: (key, message, signature) => crypto.verify('sha256', message, { key, padding: crypto.constants.RSA_PKCS1_PSS_PADDING, saltLength: 32 }, signature) },
    { spec: 'RSA_2048', algorithm: 'RSASSA_PKCS1_V1_5_SHA_256', check: (key, message, signature) => crypto.verify('sha256', message, key, signature) },
  ];

  for (const { spec, algorithm, check } of cases) {
    it(`${spec} ${algorithm}: ${CLIENTS} clients sign and verify at once on one key; node:crypto accepts every signature, a changed message is KMSInvalidSignatureException; one C_SignInit and one C_Sign per signature`, async () => {
      const { keyId } = await createdKey(kms, { KeySpec: spec, KeyUsage: 'SIGN_VERIFY' });
      const publicKey = await publicKeyOf(keyId);
      const before = { init: await tokenCalls('C_SignInit', 'ok'), sign: await tokenCalls('C_Sign', 'ok'), refused: await tokenCalls('C_Verify', 'error') };
      const clients = Array.from({ length: CLIENTS }, (_, i) => i);
      const answers = await Promise.all(
        clients.map(async (i) => {
          const message = Buffer.from(`message ${i} of ${spec} ${algorithm}`);
          const { Signature, SigningAlgorithm, KeyId } = await kms.send(new SignCommand({ KeyId: keyId, Message: message, MessageType: 'RAW', SigningAlgorithm: algorithm }));
          const signature = Buffer.from(Signature!);
          const { SignatureValid } = await kms.send(new VerifyCommand({ KeyId: keyId, Message: message, MessageType: 'RAW', SigningAlgorithm: algorithm, Signature: signature }));
          const refusal = await expectKmsError(kms.send(new VerifyCommand({ KeyId: keyId, Message: Buffer.from(`another ${i}`), MessageType: 'RAW', SigningAlgorithm: algorithm, Signature: signature })));
          return { verifiedHere: check(publicKey, message, signature), SignatureValid, SigningAlgorithm, KeyId, refusal: refusal.name, status: refusal.$metadata?.httpStatusCode };
        }),
      );
      for (const answer of answers) {
        expect(answer).to.deep.include({ verifiedHere: true, SignatureValid: true, SigningAlgorithm: algorithm, refusal: 'KMSInvalidSignatureException', status: 400 });
        expect(answer.KeyId).to.match(new RegExp(`:key/${keyId}$`));
      }
      expect(await tokenCalls('C_SignInit', 'ok'), 'C_SignInit counted once per signature').to.equal(before.init + CLIENTS);
      expect(await tokenCalls('C_Sign', 'ok'), 'C_Sign counted once per signature').to.equal(before.sign + CLIENTS);
      expect(await tokenCalls('C_Verify', 'error'), 'each refused signature counted as a failed C_Verify').to.equal(before.refused + CLIENTS);
    });
  }

  it(`RSA_2048 ENCRYPT_DECRYPT: ${CLIENTS} clients decrypt node:crypto ciphertexts at once (RSAES_OAEP_SHA_256 and _SHA_1), a corrupted one is InvalidCiphertextException`, async () => {
    const { keyId } = await createdKey(kms, { KeySpec: 'RSA_2048', KeyUsage: 'ENCRYPT_DECRYPT' });
    const publicKey = await publicKeyOf(keyId);
    const answers = await Promise.all(
      Array.from({ length: CLIENTS }, async (_, i) => {
        const hash = i % 2 === 0 ? 'sha256' : 'sha1';
        const plaintext = Buffer.from(`secret ${i}`);
        const ciphertext = crypto.publicEncrypt({ key: publicKey, padding: crypto.constants.RSA_PKCS1_OAEP_PADDING, oaepHash: hash }, plaintext);
        const EncryptionAlgorithm = hash === 'sha256' ? 'RSAES_OAEP_SHA_256' : 'RSAES_OAEP_SHA_1';
        const { Plaintext } = await kms.send(new DecryptCommand({ KeyId: keyId, CiphertextBlob: ciphertext, EncryptionAlgorithm }));
        const corrupted = Buffer.from(ciphertext);
        corrupted[corrupted.length - 1] ^= 1;
        const refusal = await expectKmsError(kms.send(new DecryptCommand({ KeyId: keyId, CiphertextBlob: corrupted, EncryptionAlgorithm })));
        return { same: Buffer.from(Plaintext!).equals(plaintext), refusal: refusal.name };
      }),
    );
    expect(answers).to.deep.equal(Array.from({ length: CLIENTS }, () => ({ same: true, refusal: 'InvalidCiphertextException' })));
  });
});
