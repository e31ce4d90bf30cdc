import * as crypto from 'node:crypto';
import {
  CreateKeyCommand,
  DecryptCommand,
  EncryptCommand,
  GenerateDataKeyCommand,
  GenerateDataKeyWithoutPlaintextCommand,
  type KeySpec,
  type KMSClient,
  ReEncryptCommand,
} from '@aws-sdk/client-kms';
import { expect } from 'chai';
import { asymmetricSuite } from '../support/asymmetric-suite';
import { expectKmsError } from '../support/server';
import { describeEachToken } from '../support/test-tokens';

describeEachToken('asymmetric, HMAC and key-agreement keys', function (token) {
  this.timeout(60_000);
  const { started, key, publicKeyOf } = asymmetricSuite(token);
  let kms: KMSClient;
  before(() => ({ kms } = started()));

  describe('RSA encryption', function () {
    const limits: Array<[KeySpec, number, number]> = [
      ['RSA_2048', 214, 190],
      ['RSA_3072', 342, 318],
    ];
    for (const [spec, sha1Limit, sha256Limit] of limits) {
      it(`${spec}: ciphertexts made with node:crypto decrypt in p11kms, up to ${sha1Limit}/${sha256Limit} bytes`, async () => {
        const meta = await key(spec, 'ENCRYPT_DECRYPT');
        expect(meta.EncryptionAlgorithms).to.deep.equal(['RSAES_OAEP_SHA_1', 'RSAES_OAEP_SHA_256']);
        const publicKey = await publicKeyOf(meta.KeyId!);
        for (const [algorithm, hash, limit] of [['RSAES_OAEP_SHA_1', 'sha1', sha1Limit], ['RSAES_OAEP_SHA_256', 'sha256', sha256Limit]] as const) {
          for (const size of [1, limit]) {
            const plaintext = crypto.randomBytes(size);
            const ciphertext = crypto.publicEncrypt({ key: publicKey, padding: crypto.constants.RSA_PKCS1_OAEP_PADDING, oaepHash: hash }, plaintext);
            const out = await kms.send(new DecryptCommand({ KeyId: meta.KeyId, CiphertextBlob: ciphertext, EncryptionAlgorithm: algorithm }));
            expect(Buffer.from(out.Plaintext!).equals(plaintext), `${algorithm} ${size} bytes`).to.equal(true);
            expect(out.EncryptionAlgorithm).to.equal(algorithm);
            expect(out.KeyId).to.equal(meta.Arn);
          }
          const tooLarge = await expectKmsError(
            kms.send(new EncryptCommand({ KeyId: meta.KeyId, Plaintext: Buffer.alloc(limit + 1), EncryptionAlgorithm: algorithm })),
          );
          expect(tooLarge.name).to.equal('ValidationException');
          expect(tooLarge.message).to.equal(`Algorithm ${algorithm} and key spec ${spec} cannot encrypt data larger than ${limit} bytes.`);
          const { CiphertextBlob } = await kms.send(new EncryptCommand({ KeyId: meta.KeyId, Plaintext: Buffer.from('round trip'), EncryptionAlgorithm: algorithm }));
          // What p11kms encrypted is plain RSA-OAEP: node decrypts nothing (no private key), but p11kms does.
          const back = await kms.send(new DecryptCommand({ KeyId: meta.KeyId, CiphertextBlob, EncryptionAlgorithm: algorithm }));
          expect(Buffer.from(back.Plaintext!).toString()).to.equal('round trip');
        }
      });
    }

    it('answers every corrupted RSA ciphertext with InvalidCiphertextException, for both OAEP paths', async () => {
      const meta = await key('RSA_2048', 'ENCRYPT_DECRYPT');
      for (const algorithm of ['RSAES_OAEP_SHA_1', 'RSAES_OAEP_SHA_256'] as const) {
        const { CiphertextBlob } = await kms.send(new EncryptCommand({ KeyId: meta.KeyId, Plaintext: Buffer.from('x'), EncryptionAlgorithm: algorithm }));
        for (const position of [0, 1, 100, 255]) {
          const corrupted = Buffer.from(CiphertextBlob!);
          corrupted[position] ^= 0x40;
          const err = await expectKmsError(kms.send(new DecryptCommand({ KeyId: meta.KeyId, CiphertextBlob: corrupted, EncryptionAlgorithm: algorithm })));
          expect(err.name, `${algorithm} byte ${position}`).to.equal('InvalidCiphertextException');
        }
        const wrongAlgorithm = algorithm === 'RSAES_OAEP_SHA_1' ? 'RSAES_OAEP_SHA_256' : 'RSAES_OAEP_SHA_1';
        const err = await expectKmsError(kms.send(new DecryptCommand({ KeyId: meta.KeyId, CiphertextBlob, EncryptionAlgorithm: wrongAlgorithm })));
        expect(err.name).to.equal('InvalidCiphertextException');
        const short = await expectKmsError(kms.send(new DecryptCommand({ KeyId: meta.KeyId, CiphertextBlob: CiphertextBlob!.subarray(1), EncryptionAlgorithm: algorithm })));
        expect(short.name).to.equal('InvalidCiphertextException');
      }
    });

    it('needs an RSAES algorithm and refuses an encryption context', async () => {
      const meta = await key('RSA_2048', 'ENCRYPT_DECRYPT');
      const noAlgorithm = await expectKmsError(kms.send(new EncryptCommand({ KeyId: meta.KeyId, Plaintext: Buffer.from('x') })));
      expect(noAlgorithm.name).to.equal('InvalidKeyUsageException');
      const withContext = await expectKmsError(
        kms.send(new EncryptCommand({ KeyId: meta.KeyId, Plaintext: Buffer.from('x'), EncryptionAlgorithm: 'RSAES_OAEP_SHA_1', EncryptionContext: { a: 'b' } })),
      );
      expect(withContext.name).to.equal('ValidationException');
    });

    it('refuses GenerateDataKey and GenerateDataKeyWithoutPlaintext with an RSA key as a client error, DryRun too', async () => {
      const meta = await key('RSA_2048', 'ENCRYPT_DECRYPT');
      const expected = ['InvalidKeyUsageException', 400];
      for (const [operation, attempt] of [
        ['GenerateDataKey', kms.send(new GenerateDataKeyCommand({ KeyId: meta.KeyId, KeySpec: 'AES_256' }))],
        ['GenerateDataKey', kms.send(new GenerateDataKeyCommand({ KeyId: meta.KeyId, KeySpec: 'AES_256', DryRun: true }))],
        ['GenerateDataKeyWithoutPlaintext', kms.send(new GenerateDataKeyWithoutPlaintextCommand({ KeyId: meta.KeyId, NumberOfBytes: 16 }))],
      ] as const) {
        const err = await expectKmsError(attempt);
        expect([err.name, err.$metadata?.httpStatusCode], operation).to.deep.equal(expected);
        expect(err.message).to.equal(`${meta.Arn} key spec RSA_2048 is not valid for ${operation}; use a symmetric encryption KMS key.`);
      }
    });

    it('re-encrypts from a symmetric key to an RSA key and back', async () => {
      const symmetric = (await kms.send(new CreateKeyCommand({}))).KeyMetadata!;
      const rsa = await key('RSA_2048', 'ENCRYPT_DECRYPT');
      const plaintext = Buffer.from('moving between key types');
      const { CiphertextBlob } = await kms.send(new EncryptCommand({ KeyId: symmetric.KeyId, Plaintext: plaintext, EncryptionContext: { k: 'v' } }));
      const toRsa = await kms.send(
        new ReEncryptCommand({ CiphertextBlob, SourceEncryptionContext: { k: 'v' }, DestinationKeyId: rsa.KeyId, DestinationEncryptionAlgorithm: 'RSAES_OAEP_SHA_256' }),
      );
      expect(toRsa.KeyId).to.equal(rsa.Arn);
      expect(toRsa.SourceKeyId).to.equal(symmetric.Arn);
      expect(toRsa.DestinationEncryptionAlgorithm).to.equal('RSAES_OAEP_SHA_256');
      expect(toRsa.SourceEncryptionAlgorithm).to.equal('SYMMETRIC_DEFAULT');
      const publicKeyless = await kms.send(new DecryptCommand({ KeyId: rsa.KeyId, CiphertextBlob: toRsa.CiphertextBlob, EncryptionAlgorithm: 'RSAES_OAEP_SHA_256' }));
      expect(Buffer.from(publicKeyless.Plaintext!).equals(plaintext)).to.equal(true);
      const back = await kms.send(
        new ReEncryptCommand({
          CiphertextBlob: toRsa.CiphertextBlob,
          SourceKeyId: rsa.KeyId,
          SourceEncryptionAlgorithm: 'RSAES_OAEP_SHA_256',
          DestinationKeyId: symmetric.KeyId,
          DestinationEncryptionContext: { new: 'context' },
        }),
      );
      expect(back.SourceKeyId).to.equal(rsa.Arn);
      const final = await kms.send(new DecryptCommand({ CiphertextBlob: back.CiphertextBlob, EncryptionContext: { new: 'context' } }));
      expect(Buffer.from(final.Plaintext!).equals(plaintext)).to.equal(true);
      // Without the source key named, an RSA ciphertext is not one p11kms can identify.
      const unnamed = await expectKmsError(kms.send(new ReEncryptCommand({ CiphertextBlob: toRsa.CiphertextBlob, DestinationKeyId: symmetric.KeyId })));
      expect(unnamed.name).to.equal('InvalidCiphertextException');
    });
  });
});
