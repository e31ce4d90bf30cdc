/**
 * GenerateDataKey, GenerateDataKeyWithoutPlaintext, ReEncrypt and GenerateRandom through the
 * unmodified AWS SDK for JavaScript v3 against a real p11kms process on each test token.
 * Encrypt, Decrypt, key states and DryRun: crypto-encrypt-decrypt.test.ts.
 */
import { randomBytes } from 'node:crypto';
import { expect } from 'chai';
import {
  type DataKeySpec,
  GenerateDataKeyCommand,
  GenerateDataKeyWithoutPlaintextCommand,
  GenerateRandomCommand,
  type KeyMetadata,
  type KMSClient,
  ReEncryptCommand,
} from '@aws-sdk/client-kms';
import { expectKmsError, type TestServer } from '../support/server';
import { aliasA, aliasArnA, fields, INCORRECT_KEY, symmetricCryptoSuite } from '../support/symmetric-crypto-suite';
import { describeEachToken } from '../support/test-tokens';

describeEachToken('crypto: GenerateDataKey, GenerateDataKeyWithoutPlaintext, ReEncrypt, GenerateRandom', function (token) {
  const { rig, currentMaterialId, encrypt, decrypt, wireError, expectError, expectInvalidCiphertext } = symmetricCryptoSuite();
  let server: TestServer;
  let kms: KMSClient;
  let keyA: KeyMetadata;
  let keyB: KeyMetadata;
  // The suite's own before hook, registered first, has filled the rig in by now.
  before(() => ({ server, kms, keyA, keyB } = rig));

  describe('GenerateDataKey', function () {
    const cases: Array<[string, { KeySpec?: DataKeySpec; NumberOfBytes?: number }, number]> = [
      ['KeySpec AES_256', { KeySpec: 'AES_256' }, 32],
      ['KeySpec AES_128', { KeySpec: 'AES_128' }, 16],
      ['NumberOfBytes 1', { NumberOfBytes: 1 }, 1],
      ['NumberOfBytes 64', { NumberOfBytes: 64 }, 64],
      ['NumberOfBytes 1024', { NumberOfBytes: 1024 }, 1024],
    ];
    for (const [what, spec, length] of cases) {
      it(`${what} gives a ${length}-byte key whose ciphertext decrypts to it`, async function () {
        const context = { bucket: 'reports', object: what };
        const out = await kms.send(new GenerateDataKeyCommand({ KeyId: keyA.KeyId, EncryptionContext: context, ...spec }));
        expect(fields(out)).to.deep.equal(['CiphertextBlob', 'KeyId', 'KeyMaterialId', 'Plaintext']);
        expect(out.Plaintext).to.have.length(length);
        expect(out.KeyId).to.equal(keyA.Arn);
        expect(out.KeyMaterialId).to.equal(await currentMaterialId(keyA.KeyId!));
        const dec = await decrypt(out.CiphertextBlob!, { object: what, bucket: 'reports' });
        expect(Buffer.from(dec.Plaintext!).equals(Buffer.from(out.Plaintext!))).to.equal(true);
        expect(dec.KeyId).to.equal(keyA.Arn);
        await expectInvalidCiphertext(decrypt(out.CiphertextBlob!));
      });
    }

    it('gives a different key each call', async function () {
      const [one, two] = await Promise.all([1, 2].map(() => kms.send(new GenerateDataKeyCommand({ KeyId: aliasA, KeySpec: 'AES_256' }))));
      expect(Buffer.from(one.Plaintext!).equals(Buffer.from(two.Plaintext!))).to.equal(false);
      expect(one.KeyId).to.equal(keyA.Arn);
    });

    it('refuses both KeySpec and NumberOfBytes, or neither, with ValidationException', async function () {
      for (const spec of [{ KeySpec: 'AES_256' as DataKeySpec, NumberOfBytes: 32 }, {}]) {
        const err = await expectError(kms.send(new GenerateDataKeyCommand({ KeyId: keyA.KeyId, ...spec })), 'ValidationException');
        // Not recorded from AWS: the message must name what to specify.
        expect(wireError(err).message, JSON.stringify(spec)).to.match(/number ?of ?bytes/i).and.match(/key ?spec/i);
        await expectError(kms.send(new GenerateDataKeyWithoutPlaintextCommand({ KeyId: keyA.KeyId, ...spec })), 'ValidationException');
      }
    });

    it('refuses KeySpec AES_257 and NumberOfBytes 1025 with ValidationException', async function () {
      const bad = await expectError(
        kms.send(new GenerateDataKeyCommand({ KeyId: keyA.KeyId, KeySpec: 'AES_257' as DataKeySpec })),
        'ValidationException',
      );
      expect(wireError(bad).message).to.include("'AES_257'").and.include("'keySpec'").and.include('AES_256');
      const big = await expectError(kms.send(new GenerateDataKeyCommand({ KeyId: keyA.KeyId, NumberOfBytes: 1025 })), 'ValidationException');
      expect(wireError(big).message).to.include("'1025'").and.include("'numberOfBytes'").and.include('1024');
      await expectError(kms.send(new GenerateDataKeyCommand({ KeyId: keyA.KeyId, NumberOfBytes: 0 })), 'ValidationException');
    });
  });

  describe('GenerateDataKeyWithoutPlaintext', function () {
    for (const length of [1, 7, 13, 16, 32, 1000, 1024]) {
      it(`NumberOfBytes ${length}: no Plaintext, and the blob decrypts to exactly ${length} bytes`, async function () {
        const context = { length: String(length) };
        // A token that holds shorter secrets only (profile quirk maxSecretBytes) refuses, naming its limit.
        const max = token.quirks.maxSecretBytes;
        if (max !== undefined && length > max) {
          const err = await expectKmsError(kms.send(new GenerateDataKeyWithoutPlaintextCommand({ KeyId: keyA.KeyId, NumberOfBytes: length })));
          expect([err.name, err.message]).to.deep.equal(['UnsupportedOperationException', `This key store's token holds secrets of at most ${max} bytes, so it cannot make or open data keys of ${length} bytes.`]);
          // DryRun does not claim it would have succeeded.
          const dry = await expectKmsError(kms.send(new GenerateDataKeyWithoutPlaintextCommand({ KeyId: keyA.KeyId, NumberOfBytes: length, DryRun: true })));
          expect([dry.name, dry.message]).to.deep.equal([err.name, err.message]);
          return;
        }
        const out = await kms.send(new GenerateDataKeyWithoutPlaintextCommand({ KeyId: keyA.KeyId, NumberOfBytes: length, EncryptionContext: context }));
        expect(fields(out)).to.deep.equal(['CiphertextBlob', 'KeyId', 'KeyMaterialId']);
        expect((out as unknown as Record<string, unknown>).Plaintext).to.equal(undefined);
        expect(out.KeyId).to.equal(keyA.Arn);
        const dec = await decrypt(out.CiphertextBlob!, context);
        expect(dec.Plaintext, 'decrypted data key').to.have.length(length);
        expect(dec.KeyId).to.equal(keyA.Arn);
        expect(dec.KeyMaterialId).to.equal(out.KeyMaterialId);
        // The same blob decrypts to the same bytes every time.
        const again = await decrypt(out.CiphertextBlob!, context);
        expect(Buffer.from(again.Plaintext!).equals(Buffer.from(dec.Plaintext!))).to.equal(true);
      });
    }

    it('KeySpec AES_128 and AES_256 give 16- and 32-byte keys, different each call', async function () {
      const a = await kms.send(new GenerateDataKeyWithoutPlaintextCommand({ KeyId: keyA.KeyId, KeySpec: 'AES_128' }));
      const b = await kms.send(new GenerateDataKeyWithoutPlaintextCommand({ KeyId: keyA.KeyId, KeySpec: 'AES_256' }));
      const c = await kms.send(new GenerateDataKeyWithoutPlaintextCommand({ KeyId: keyA.KeyId, KeySpec: 'AES_256' }));
      expect((await decrypt(a.CiphertextBlob!)).Plaintext).to.have.length(16);
      const pb = Buffer.from((await decrypt(b.CiphertextBlob!)).Plaintext!);
      const pc = Buffer.from((await decrypt(c.CiphertextBlob!)).Plaintext!);
      expect(pb).to.have.length(32);
      expect(pb.equals(pc)).to.equal(false);
    });

    it('binds the encryption context like Encrypt does', async function () {
      const out = await kms.send(
        new GenerateDataKeyWithoutPlaintextCommand({ KeyId: keyA.KeyId, KeySpec: 'AES_256', EncryptionContext: { a: '1', b: '2' } }),
      );
      expect((await decrypt(out.CiphertextBlob!, { b: '2', a: '1' })).Plaintext).to.have.length(32);
      await expectInvalidCiphertext(decrypt(out.CiphertextBlob!));
      await expectInvalidCiphertext(decrypt(out.CiphertextBlob!, { a: '1' }));
      await expectInvalidCiphertext(decrypt(out.CiphertextBlob!, { a: '1', b: '3' }));
      await expectInvalidCiphertext(decrypt(out.CiphertextBlob!, { a: '1', b: '2', c: '3' }));
      await expectError(decrypt(out.CiphertextBlob!, { a: '1', b: '2' }, keyB.KeyId), 'IncorrectKeyException', INCORRECT_KEY);
    });
  });

  describe('ReEncrypt', function () {
    it("moves a ciphertext to another key with AWS's response fields", async function () {
      const plaintext = randomBytes(100);
      const blob = await encrypt(keyA.KeyId!, plaintext, { stage: 'old' });
      const out = await kms.send(
        new ReEncryptCommand({
          CiphertextBlob: blob,
          SourceEncryptionContext: { stage: 'old' },
          DestinationKeyId: keyB.KeyId,
          DestinationEncryptionContext: { stage: 'new' },
        }),
      );
      expect(fields(out)).to.deep.equal([
        'CiphertextBlob',
        'DestinationEncryptionAlgorithm',
        'DestinationKeyMaterialId',
        'KeyId',
        'SourceEncryptionAlgorithm',
        'SourceKeyId',
        'SourceKeyMaterialId',
      ]);
      expect(out.SourceKeyId).to.equal(keyA.Arn);
      expect(out.KeyId).to.equal(keyB.Arn);
      expect(out.SourceEncryptionAlgorithm).to.equal('SYMMETRIC_DEFAULT');
      expect(out.DestinationEncryptionAlgorithm).to.equal('SYMMETRIC_DEFAULT');
      expect(out.SourceKeyMaterialId).to.equal(await currentMaterialId(keyA.KeyId!));
      expect(out.DestinationKeyMaterialId).to.equal(await currentMaterialId(keyB.KeyId!));

      const moved = Buffer.from(out.CiphertextBlob!);
      const dec = await decrypt(moved, { stage: 'new' });
      expect(Buffer.from(dec.Plaintext!).equals(plaintext)).to.equal(true);
      expect(dec.KeyId).to.equal(keyB.Arn);
      expect(dec.KeyMaterialId).to.equal(out.DestinationKeyMaterialId);
      await expectInvalidCiphertext(decrypt(moved, { stage: 'old' }));
      await expectInvalidCiphertext(decrypt(moved));
      await expectError(decrypt(moved, { stage: 'new' }, keyA.KeyId), 'IncorrectKeyException', INCORRECT_KEY);
      expect((await decrypt(moved, { stage: 'new' }, keyB.Arn)).KeyId).to.equal(keyB.Arn);
    });

    it('re-encrypts under the same key with a new context', async function () {
      const plaintext = Buffer.from('rotate my context');
      const blob = await encrypt(keyA.KeyId!, plaintext, { v: '1' });
      const out = await kms.send(
        new ReEncryptCommand({
          CiphertextBlob: blob,
          SourceKeyId: aliasA,
          SourceEncryptionContext: { v: '1' },
          DestinationKeyId: aliasArnA,
          DestinationEncryptionContext: { v: '2' },
        }),
      );
      expect(out.SourceKeyId).to.equal(keyA.Arn);
      expect(out.KeyId).to.equal(keyA.Arn);
      const moved = Buffer.from(out.CiphertextBlob!);
      expect(moved.equals(blob)).to.equal(false);
      expect(Buffer.from((await decrypt(moved, { v: '2' })).Plaintext!).equals(plaintext)).to.equal(true);
      await expectInvalidCiphertext(decrypt(moved, { v: '1' }));
      // The original is untouched.
      expect(Buffer.from((await decrypt(blob, { v: '1' })).Plaintext!).equals(plaintext)).to.equal(true);
    });

    it("refuses a wrong SourceKeyId with IncorrectKeyException and AWS's text", async function () {
      const blob = await encrypt(keyA.KeyId!, Buffer.from('x'));
      await expectError(
        kms.send(new ReEncryptCommand({ CiphertextBlob: blob, SourceKeyId: keyB.KeyId, DestinationKeyId: keyB.KeyId })),
        'IncorrectKeyException',
        INCORRECT_KEY,
      );
    });

    it('refuses a wrong or missing source context with InvalidCiphertextException', async function () {
      const blob = await encrypt(keyA.KeyId!, Buffer.from('x'), { owner: 'me' });
      await expectInvalidCiphertext(
        kms.send(new ReEncryptCommand({ CiphertextBlob: blob, SourceEncryptionContext: { owner: 'you' }, DestinationKeyId: keyB.KeyId })),
      );
      await expectInvalidCiphertext(kms.send(new ReEncryptCommand({ CiphertextBlob: blob, DestinationKeyId: keyB.KeyId })));
    });

    it('moves a GenerateDataKeyWithoutPlaintext key to another master key without changing its bytes', async function () {
      for (const length of [13, 32]) {
        const out = await kms.send(
          new GenerateDataKeyWithoutPlaintextCommand({ KeyId: keyA.KeyId, NumberOfBytes: length, EncryptionContext: { dk: 'orig' } }),
        );
        const original = Buffer.from((await decrypt(out.CiphertextBlob!, { dk: 'orig' })).Plaintext!);
        const moved = await kms.send(
          new ReEncryptCommand({
            CiphertextBlob: out.CiphertextBlob,
            SourceEncryptionContext: { dk: 'orig' },
            DestinationKeyId: keyB.Arn,
            DestinationEncryptionContext: { dk: 'moved' },
          }),
        );
        expect(moved.KeyId).to.equal(keyB.Arn);
        const dec = await decrypt(moved.CiphertextBlob!, { dk: 'moved' }, keyB.KeyId);
        expect(dec.Plaintext, `${length}-byte data key after ReEncrypt`).to.have.length(length);
        expect(Buffer.from(dec.Plaintext!).equals(original), `${length}-byte data key after ReEncrypt`).to.equal(true);
        await expectInvalidCiphertext(decrypt(moved.CiphertextBlob!, { dk: 'orig' }));
      }
    });
  });

  describe('GenerateRandom', function () {
    for (const n of [1, 12, 44, 91, 1024]) {
      it(`returns exactly ${n} byte(s)`, async function () {
        const out = await kms.send(new GenerateRandomCommand({ NumberOfBytes: n }));
        expect(fields(out)).to.deep.equal(['Plaintext']);
        expect(out.Plaintext).to.have.length(n);
      });
    }

    it('returns different bytes on each call', async function () {
      const [a, b] = await Promise.all([1, 2].map(() => kms.send(new GenerateRandomCommand({ NumberOfBytes: 32 }))));
      expect(Buffer.from(a.Plaintext!).equals(Buffer.from(b.Plaintext!))).to.equal(false);
    });

    it('refuses a missing, 0 or 1025 NumberOfBytes with the recorded ValidationException texts', async function () {
      await expectError(kms.send(new GenerateRandomCommand({})), 'ValidationException', 'NumberOfBytes is required.');
      await expectError(
        kms.send(new GenerateRandomCommand({ NumberOfBytes: 0 })),
        'ValidationException',
        "1 validation error detected: Value '0' at 'numberOfBytes' failed to satisfy constraint: Member must have value greater than or equal to 1",
      );
      await expectError(
        kms.send(new GenerateRandomCommand({ NumberOfBytes: 1025 })),
        'ValidationException',
        "1 validation error detected: Value '1025' at 'numberOfBytes' failed to satisfy constraint: Member must have value less than or equal to 1024",
      );
    });
  });

  describe('server log', function () {
    it('recorded no unexpected failure while the suite ran', function () {
      // Every refusal above is an expected client error; an "unexpected failure" line is a defect.
      expect(server.stderr()).not.to.include('unexpected failure');
    });
  });
});
