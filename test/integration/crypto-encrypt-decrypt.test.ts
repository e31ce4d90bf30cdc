/**
 * Symmetric Encrypt and Decrypt through the unmodified AWS SDK for JavaScript v3 against a
 * real p11kms process on each test token: round trips, encryption contexts, tampered and
 * forged ciphertexts, what disabled keys and keys pending deletion refuse, and DryRun.
 * GenerateDataKey(+WithoutPlaintext), ReEncrypt and GenerateRandom: crypto-data-keys.test.ts.
 */
import { randomBytes } from 'node:crypto';
import { expect } from 'chai';
import {
  CancelKeyDeletionCommand,
  CreateKeyCommand,
  DecryptCommand,
  type DecryptCommandOutput,
  DisableKeyCommand,
  EnableKeyCommand,
  EncryptCommand,
  type EncryptionAlgorithmSpec,
  GenerateDataKeyCommand,
  GenerateDataKeyWithoutPlaintextCommand,
  type KeyMetadata,
  type KMSClient,
  ReEncryptCommand,
  ScheduleKeyDeletionCommand,
} from '@aws-sdk/client-kms';
import { expectKmsError } from '../support/server';
import { aliasA, aliasArnA, type Context, fields, INCORRECT_KEY, type KmsFailure, requestIdOf, symmetricCryptoSuite } from '../support/symmetric-crypto-suite';
import { describeEachToken } from '../support/test-tokens';

const DRY_RUN = 'The request would have succeeded, but the DryRun option is set.';

describeEachToken('crypto: Encrypt, Decrypt, key states, DryRun', function () {
  const { rig, createKey, currentMaterialId, encrypt, decrypt, wireError, expectError, expectInvalidCiphertext } = symmetricCryptoSuite();
  let kms: KMSClient;
  let errorBodies: Map<string, string>;
  let keyA: KeyMetadata;
  let keyB: KeyMetadata;
  // The suite's own before hook, registered first, has filled the rig in by now.
  before(() => ({ kms, errorBodies, keyA, keyB } = rig));

  /** What a tampered blob's Decrypt did when it was anything but AWS's bare InvalidCiphertextException (HTTP 400, empty message). */
  const unlessBareInvalidCiphertext = async (attempt: Promise<DecryptCommandOutput>, what: string, decrypted: (out: DecryptCommandOutput) => string): Promise<string | undefined> => {
    try {
      return `${what}: ${decrypted(await attempt)}`;
    } catch (e) {
      const err = e as KmsFailure;
      const body = errorBodies.get(requestIdOf(err));
      if (err.name === 'InvalidCiphertextException' && err.$metadata?.httpStatusCode === 400 && body !== undefined && JSON.parse(body).message === '') return undefined;
      return `${what}: ${err.$metadata?.httpStatusCode} ${err.name} ${body ?? err.message}`;
    }
  };

  /** The unexpected outcomes of decrypting `blob` with each of its bits flipped in turn. */
  const bitFlipOutcomes = async (blob: Uint8Array, context: Context, decrypted: (out: DecryptCommandOutput) => string): Promise<string[]> => {
    const unexpected: string[] = [];
    for (let i = 0; i < blob.length; i++) {
      const tampered = Buffer.from(blob);
      tampered[i] ^= 0x01;
      const outcome = await unlessBareInvalidCiphertext(decrypt(tampered, context), `byte ${i}`, decrypted);
      if (outcome !== undefined) unexpected.push(outcome);
    }
    return unexpected;
  };

  describe('Encrypt and Decrypt', function () {
    for (const size of [1, 4096]) {
      it(`round-trips ${size} byte(s) without a context, with AWS's response fields`, async function () {
        const plaintext = randomBytes(size);
        const enc = await kms.send(new EncryptCommand({ KeyId: keyA.KeyId, Plaintext: plaintext }));
        expect(fields(enc)).to.deep.equal(['CiphertextBlob', 'EncryptionAlgorithm', 'KeyId']);
        expect(enc.EncryptionAlgorithm).to.equal('SYMMETRIC_DEFAULT');
        expect(enc.KeyId).to.equal(keyA.Arn);
        expect(enc.CiphertextBlob!.length).to.be.greaterThan(size);
        if (size > 1) expect(Buffer.from(enc.CiphertextBlob!).includes(plaintext), 'plaintext visible in the blob').to.equal(false);

        const dec = await decrypt(enc.CiphertextBlob!);
        expect(fields(dec)).to.deep.equal(['EncryptionAlgorithm', 'KeyId', 'KeyMaterialId', 'Plaintext']);
        expect(Buffer.from(dec.Plaintext!).equals(plaintext)).to.equal(true);
        expect(dec.KeyId).to.equal(keyA.Arn);
        expect(dec.EncryptionAlgorithm).to.equal('SYMMETRIC_DEFAULT');
        expect(dec.KeyMaterialId).to.equal(await currentMaterialId(keyA.KeyId!));
      });

      it(`round-trips ${size} byte(s) with an encryption context given in another order on Decrypt`, async function () {
        const plaintext = randomBytes(size);
        const blob = await encrypt(keyA.KeyId!, plaintext, { a: 'alpha', b: 'beta' });
        const dec = await decrypt(blob, { b: 'beta', a: 'alpha' });
        expect(Buffer.from(dec.Plaintext!).equals(plaintext)).to.equal(true);
        expect(dec.KeyId).to.equal(keyA.Arn);
        expect(fields(dec)).to.deep.equal(['EncryptionAlgorithm', 'KeyId', 'KeyMaterialId', 'Plaintext']);
      });
    }

    it('round-trips a context with non-ASCII keys and values', async function () {
      const context = { 'ключ': 'значение ✓', department: '経理', empty: '' };
      const blob = await encrypt(keyA.KeyId!, Buffer.from('unicode context'), context);
      const dec = await decrypt(blob, { empty: '', department: '経理', 'ключ': 'значение ✓' });
      expect(Buffer.from(dec.Plaintext!).toString()).to.equal('unicode context');
    });

    it('gives a different ciphertext for each Encrypt of the same plaintext', async function () {
      const plaintext = Buffer.from('the same plaintext every time');
      const blobs = await Promise.all([1, 2, 3, 4, 5].map(() => encrypt(keyA.KeyId!, plaintext, { x: 'y' })));
      expect(new Set(blobs.map((b) => b.toString('base64'))).size).to.equal(blobs.length);
      for (const blob of blobs) {
        expect(Buffer.from((await decrypt(blob, { x: 'y' })).Plaintext!).equals(plaintext)).to.equal(true);
      }
    });

    it('decrypts with the right KeyId given as key id, key ARN, alias name and alias ARN', async function () {
      const plaintext = randomBytes(48);
      const blob = await encrypt(aliasA, plaintext, { purpose: 'forms' });
      for (const keyId of [keyA.KeyId!, keyA.Arn!, aliasA, aliasArnA]) {
        const dec = await decrypt(blob, { purpose: 'forms' }, keyId);
        expect(Buffer.from(dec.Plaintext!).equals(plaintext), `Decrypt with KeyId ${keyId}`).to.equal(true);
        expect(dec.KeyId, `Decrypt with KeyId ${keyId}`).to.equal(keyA.Arn);
      }
    });

    it("refuses Decrypt naming another key with IncorrectKeyException and AWS's text", async function () {
      const blob = await encrypt(keyA.KeyId!, Buffer.from('mine'));
      await expectError(decrypt(blob, undefined, keyB.KeyId), 'IncorrectKeyException', INCORRECT_KEY);
      await expectError(decrypt(blob, undefined, keyB.Arn), 'IncorrectKeyException', INCORRECT_KEY);
    });

    it('refuses a wrong, missing or extra encryption context with InvalidCiphertextException and an empty message', async function () {
      const plaintext = Buffer.from('context-bound secret');
      const blob = await encrypt(keyA.KeyId!, plaintext, { tenant: 't1', purpose: 'backup' });
      const wrong: Array<[string, Context | undefined]> = [
        ['missing context', undefined],
        ['empty context', {}],
        ['one pair missing', { tenant: 't1' }],
        ['wrong value', { tenant: 't2', purpose: 'backup' }],
        ['wrong key case', { Tenant: 't1', purpose: 'backup' }],
        ['extra pair', { tenant: 't1', purpose: 'backup', extra: 'x' }],
        ['value moved to another key', { tenant: 'backup', purpose: 't1' }],
      ];
      for (const [what, context] of wrong) {
        const err = await expectKmsError(decrypt(blob, context));
        expect(err.name, what).to.equal('InvalidCiphertextException');
        expect(err.$metadata?.httpStatusCode, what).to.equal(400);
        expect(wireError(err).message, what).to.equal('');
      }
      // A ciphertext made without a context refuses one on Decrypt.
      const bare = await encrypt(keyA.KeyId!, plaintext);
      await expectInvalidCiphertext(decrypt(bare, { tenant: 't1' }));
      // Pair boundaries are part of the context: {ab: c} is not {a: bc}.
      const shifted = await encrypt(keyA.KeyId!, plaintext, { ab: 'c' });
      await expectInvalidCiphertext(decrypt(shifted, { a: 'bc' }));
      // A "__proto__" key is an ordinary context key, not something that vanishes.
      const proto = await encrypt(keyA.KeyId!, plaintext, JSON.parse('{"__proto__":"x"}') as Context);
      await expectInvalidCiphertext(decrypt(proto));
      await expectInvalidCiphertext(decrypt(proto, JSON.parse('{"__proto__":"y"}') as Context));
      expect(Buffer.from((await decrypt(proto, JSON.parse('{"__proto__":"x"}') as Context)).Plaintext!).equals(plaintext)).to.equal(true);
      // And the right context still works.
      expect(Buffer.from((await decrypt(blob, { purpose: 'backup', tenant: 't1' })).Plaintext!).equals(plaintext)).to.equal(true);
    });

    it('refuses every single-bit flip anywhere in the blob with InvalidCiphertextException, never another error', async function () {
      this.timeout(60_000);
      const plaintext = randomBytes(16);
      const context = { flip: 'test' };
      const blob = await encrypt(keyA.KeyId!, plaintext, context);
      expect(await bitFlipOutcomes(blob, context, (out) => `decrypted to ${Buffer.from(out.Plaintext!).toString('hex')}`), `flipped bytes of a ${blob.length}-byte blob`).to.deep.equal([]);
      // The untouched blob still decrypts: the failures above came from the flips.
      expect(Buffer.from((await decrypt(blob, context)).Plaintext!).equals(plaintext)).to.equal(true);
    });

    it('refuses every single-bit flip of a GenerateDataKeyWithoutPlaintext blob', async function () {
      this.timeout(60_000);
      const context = { flip: 'wrapped' };
      const out = await kms.send(new GenerateDataKeyWithoutPlaintextCommand({ KeyId: keyA.KeyId, NumberOfBytes: 13, EncryptionContext: context }));
      const blob = Buffer.from(out.CiphertextBlob!);
      expect(await bitFlipOutcomes(blob, context, (out) => `decrypted to ${out.Plaintext?.length} bytes`), `flipped bytes of a ${blob.length}-byte blob`).to.deep.equal([]);
      expect((await decrypt(blob, context)).Plaintext).to.have.length(13);
    });

    it('refuses every truncation of a blob with InvalidCiphertextException', async function () {
      this.timeout(60_000);
      const context = { cut: 'here' };
      const blob = await encrypt(keyA.KeyId!, randomBytes(16), context);
      const unexpected: string[] = [];
      for (let length = 1; length < blob.length; length++) {
        const outcome = await unlessBareInvalidCiphertext(decrypt(blob.subarray(0, length), context), `${length} bytes`, () => 'decrypted');
        if (outcome !== undefined) unexpected.push(outcome);
      }
      expect(unexpected, `truncations of a ${blob.length}-byte blob`).to.deep.equal([]);
    });

    it('refuses random bytes, and a genuine header followed by random bytes, with InvalidCiphertextException', async function () {
      for (const size of [1, 2, 16, 24, 36, 51, 52, 53, 68, 100, 1000, 6144]) {
        const err = await expectKmsError(decrypt(randomBytes(size)));
        expect(err.name, `${size} random bytes`).to.equal('InvalidCiphertextException');
        expect(wireError(err).message, `${size} random bytes`).to.equal('');
      }
      const genuine = await encrypt(keyA.KeyId!, randomBytes(32));
      for (const size of [28, 64, 500]) {
        // Bytes 0..23 are a real header naming keyA; everything after is noise.
        const forged = Buffer.concat([genuine.subarray(0, 24), randomBytes(size)]);
        await expectInvalidCiphertext(decrypt(forged));
        await expectInvalidCiphertext(decrypt(forged, undefined, keyA.KeyId));
      }
    });

    it('refuses plaintexts of 0 and 4097 bytes with the recorded ValidationException texts', async function () {
      await expectError(
        kms.send(new EncryptCommand({ KeyId: keyA.KeyId, Plaintext: Buffer.alloc(4097, 1) })),
        'ValidationException',
        '1 validation error detected: Value at \'plaintext\' failed to satisfy constraint: Member must have length less than or equal to 4096',
      );
      await expectError(
        kms.send(new EncryptCommand({ KeyId: keyA.KeyId, Plaintext: Buffer.alloc(0) })),
        'ValidationException',
        '1 validation error detected: Value at \'plaintext\' failed to satisfy constraint: Member must have length greater than or equal to 1',
      );
    });

    it('refuses EncryptionAlgorithm RSAES_OAEP_SHA_1 on a symmetric key with InvalidKeyUsageException', async function () {
      const algorithm = 'RSAES_OAEP_SHA_1' as EncryptionAlgorithmSpec;
      const err = await expectError(
        kms.send(new EncryptCommand({ KeyId: keyA.KeyId, Plaintext: Buffer.from('x'), EncryptionAlgorithm: algorithm })),
        'InvalidKeyUsageException',
      );
      expect(wireError(err).message, 'a useful message').to.include('RSAES_OAEP_SHA_1');
      const blob = await encrypt(keyA.KeyId!, Buffer.from('x'));
      await expectError(kms.send(new DecryptCommand({ CiphertextBlob: blob, EncryptionAlgorithm: algorithm })), 'InvalidKeyUsageException');
      await expectError(
        kms.send(new ReEncryptCommand({ CiphertextBlob: blob, DestinationKeyId: keyB.KeyId, DestinationEncryptionAlgorithm: algorithm })),
        'InvalidKeyUsageException',
      );
    });
  });

  describe('key states', function () {
    let disabled: KeyMetadata;
    let disabledBlob: Buffer;
    let pending: KeyMetadata;
    let pendingBlob: Buffer;
    let blobA: Buffer;

    before(async function () {
      [disabled, pending] = await Promise.all([createKey(), createKey()]);
      disabledBlob = await encrypt(disabled.KeyId!, Buffer.from('made while enabled'));
      pendingBlob = await encrypt(pending.KeyId!, Buffer.from('made before scheduling'));
      blobA = await encrypt(keyA.KeyId!, Buffer.from('a'));
      await kms.send(new DisableKeyCommand({ KeyId: disabled.KeyId }));
      await kms.send(new ScheduleKeyDeletionCommand({ KeyId: pending.KeyId, PendingWindowInDays: 7 }));
    });

    it('refuses Encrypt, Decrypt, GenerateDataKey(+WithoutPlaintext) and ReEncrypt on a disabled key with DisabledException', async function () {
      const text = `${disabled.Arn} is disabled.`;
      await expectError(kms.send(new EncryptCommand({ KeyId: disabled.KeyId, Plaintext: Buffer.from('x') })), 'DisabledException', text);
      await expectError(decrypt(disabledBlob), 'DisabledException', text);
      await expectError(kms.send(new GenerateDataKeyCommand({ KeyId: disabled.KeyId, KeySpec: 'AES_256' })), 'DisabledException', text);
      await expectError(
        kms.send(new GenerateDataKeyWithoutPlaintextCommand({ KeyId: disabled.KeyId, KeySpec: 'AES_256' })),
        'DisabledException',
        text,
      );
      // Disabled source.
      await expectError(kms.send(new ReEncryptCommand({ CiphertextBlob: disabledBlob, DestinationKeyId: keyA.KeyId })), 'DisabledException', text);
      // Disabled destination.
      await expectError(kms.send(new ReEncryptCommand({ CiphertextBlob: blobA, DestinationKeyId: disabled.KeyId })), 'DisabledException', text);
    });

    it('checks the key state before answering a DryRun', async function () {
      await expectError(
        kms.send(new EncryptCommand({ KeyId: disabled.KeyId, Plaintext: Buffer.from('x'), DryRun: true })),
        'DisabledException',
        `${disabled.Arn} is disabled.`,
      );
      await expectError(kms.send(new DecryptCommand({ CiphertextBlob: blobA, KeyId: keyB.KeyId, DryRun: true })), 'IncorrectKeyException', INCORRECT_KEY);
    });

    it('decrypts old ciphertexts again once the key is re-enabled', async function () {
      const other = await createKey();
      const blob = await encrypt(other.KeyId!, Buffer.from('survives disable'));
      await kms.send(new DisableKeyCommand({ KeyId: other.KeyId }));
      await expectError(decrypt(blob), 'DisabledException', `${other.Arn} is disabled.`);
      await kms.send(new EnableKeyCommand({ KeyId: other.KeyId }));
      expect(Buffer.from((await decrypt(blob)).Plaintext!).toString()).to.equal('survives disable');
    });

    it('refuses cryptographic operations on a key pending deletion with KMSInvalidStateException', async function () {
      const attempts: Array<[string, Promise<unknown>]> = [
        ['Encrypt', kms.send(new EncryptCommand({ KeyId: pending.KeyId, Plaintext: Buffer.from('x') }))],
        ['Decrypt', decrypt(pendingBlob)],
        ['GenerateDataKey', kms.send(new GenerateDataKeyCommand({ KeyId: pending.KeyId, KeySpec: 'AES_256' }))],
        ['GenerateDataKeyWithoutPlaintext', kms.send(new GenerateDataKeyWithoutPlaintextCommand({ KeyId: pending.KeyId, NumberOfBytes: 16 }))],
        ['ReEncrypt from', kms.send(new ReEncryptCommand({ CiphertextBlob: pendingBlob, DestinationKeyId: keyA.KeyId }))],
        ['ReEncrypt to', kms.send(new ReEncryptCommand({ CiphertextBlob: blobA, DestinationKeyId: pending.KeyId }))],
      ];
      // Every refusal awaited from the start: one refused before the loop reached it would be a late-handled rejection.
      const refusals = await Promise.all(attempts.map(([, attempt]) => expectKmsError(attempt)));
      for (const [i, [what]] of attempts.entries()) {
        const err = refusals[i];
        expect(err.name, what).to.equal('KMSInvalidStateException');
        expect(err.$metadata?.httpStatusCode, what).to.equal(400);
        // AWS's text is not recorded: it must at least name the key and its state.
        expect(wireError(err).message, what).to.include(pending.Arn!).and.match(/pending deletion/i);
      }
    });

    it('decrypts again after the deletion is cancelled and the key enabled', async function () {
      const other = await createKey();
      const blob = await encrypt(other.KeyId!, Buffer.from('saved in time'));
      await kms.send(new ScheduleKeyDeletionCommand({ KeyId: other.KeyId, PendingWindowInDays: 7 }));
      await expectError(decrypt(blob), 'KMSInvalidStateException');
      await kms.send(new CancelKeyDeletionCommand({ KeyId: other.KeyId }));
      await expectError(decrypt(blob), 'DisabledException', `${other.Arn} is disabled.`);
      await kms.send(new EnableKeyCommand({ KeyId: other.KeyId }));
      expect(Buffer.from((await decrypt(blob)).Plaintext!).toString()).to.equal('saved in time');
    });
  });

  describe('DryRun', function () {
    it('answers DryRunOperationException on Encrypt, Decrypt, GenerateDataKey(+WithoutPlaintext) and ReEncrypt', async function () {
      const blob = await encrypt(keyA.KeyId!, Buffer.from('dry'), { d: 'r' });
      const attempts: Array<[string, Promise<unknown>]> = [
        ['Encrypt', kms.send(new EncryptCommand({ KeyId: keyA.KeyId, Plaintext: Buffer.from('x'), DryRun: true }))],
        ['Decrypt', kms.send(new DecryptCommand({ CiphertextBlob: blob, EncryptionContext: { d: 'r' }, DryRun: true }))],
        ['GenerateDataKey', kms.send(new GenerateDataKeyCommand({ KeyId: keyA.KeyId, KeySpec: 'AES_256', DryRun: true }))],
        [
          'GenerateDataKeyWithoutPlaintext',
          kms.send(new GenerateDataKeyWithoutPlaintextCommand({ KeyId: keyA.KeyId, NumberOfBytes: 32, DryRun: true })),
        ],
        [
          'ReEncrypt',
          kms.send(new ReEncryptCommand({ CiphertextBlob: blob, SourceEncryptionContext: { d: 'r' }, DestinationKeyId: keyB.KeyId, DryRun: true })),
        ],
      ];
      // Every refusal awaited from the start: one refused before the loop reached it would be a late-handled rejection.
      const refusals = await Promise.all(attempts.map(([, attempt]) => expectKmsError(attempt)));
      for (const [i, [what]] of attempts.entries()) {
        const err = refusals[i];
        expect(err.name, what).to.equal('DryRunOperationException');
        expect(wireError(err).message, what).to.equal(DRY_RUN);
        // The SDK error carries no result members: nothing was encrypted or generated.
        const leaked = ['CiphertextBlob', 'Plaintext', 'KeyId'].filter((m) => (err as unknown as Record<string, unknown>)[m] !== undefined);
        expect(leaked, what).to.deep.equal([]);
      }
    });
  });

  describe('DryRun with IGNORE_CIPHERTEXT', function () {
    it('checks the named key alone for Decrypt and ReEncrypt: any ciphertext, or none, gets DryRunOperationException', async function () {
      const garbage = randomBytes(80);
      const attempts: Array<[string, Promise<unknown>]> = [
        ['Decrypt garbage', kms.send(new DecryptCommand({ CiphertextBlob: garbage, KeyId: keyA.KeyId, DryRun: true, DryRunModifiers: ['IGNORE_CIPHERTEXT'] }))],
        ['Decrypt without a ciphertext', kms.send(new DecryptCommand({ KeyId: keyA.KeyId, DryRun: true, DryRunModifiers: ['IGNORE_CIPHERTEXT'] }))],
        [
          'ReEncrypt garbage',
          kms.send(new ReEncryptCommand({ CiphertextBlob: garbage, SourceKeyId: keyA.KeyId, DestinationKeyId: keyB.KeyId, DryRun: true, DryRunModifiers: ['IGNORE_CIPHERTEXT'] })),
        ],
      ];
      // Every refusal awaited from the start: one refused before the loop reached it would be a late-handled rejection.
      const refusals = await Promise.all(attempts.map(([, attempt]) => expectKmsError(attempt)));
      for (const [i, [what]] of attempts.entries()) {
        const err = refusals[i];
        expect([err.name, wireError(err).message], what).to.deep.equal(['DryRunOperationException', DRY_RUN]);
      }
    });

    it('still checks the key: a disabled key is DisabledException, no key named is ValidationException, no DryRun reads the ciphertext', async function () {
      const disabled = (await kms.send(new CreateKeyCommand({}))).KeyMetadata!;
      await kms.send(new DisableKeyCommand({ KeyId: disabled.KeyId }));
      const garbage = randomBytes(80);
      const off = await expectKmsError(kms.send(new DecryptCommand({ CiphertextBlob: garbage, KeyId: disabled.KeyId, DryRun: true, DryRunModifiers: ['IGNORE_CIPHERTEXT'] })));
      expect([off.name, off.message]).to.deep.equal(['DisabledException', `${disabled.Arn} is disabled.`]);
      const unnamed = await expectKmsError(kms.send(new DecryptCommand({ CiphertextBlob: garbage, DryRun: true, DryRunModifiers: ['IGNORE_CIPHERTEXT'] })));
      expect([unnamed.name, unnamed.message]).to.deep.equal(['ValidationException', 'KeyId is required when DryRun is true and DryRunModifiers is IGNORE_CIPHERTEXT.']);
      const notDry = await expectKmsError(kms.send(new DecryptCommand({ CiphertextBlob: garbage, KeyId: keyA.KeyId, DryRunModifiers: ['IGNORE_CIPHERTEXT'] })));
      expect(notDry.name).to.equal('InvalidCiphertextException');
    });
  });
});
