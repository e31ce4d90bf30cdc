/**
 * Symmetric cryptography through the unmodified AWS SDK for JavaScript v3 against a real
 * p11kms process on a real SoftHSM2 token: Encrypt, Decrypt, GenerateDataKey(+WithoutPlaintext),
 * ReEncrypt and GenerateRandom, compared with AWS's recorded behaviour
 * (/work/shared/aws-model/recorded-aws-responses.md).
 */
import { randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';
import { expect } from 'chai';
import {
  CancelKeyDeletionCommand,
  CreateAliasCommand,
  CreateKeyCommand,
  type DataKeySpec,
  DecryptCommand,
  type DecryptCommandOutput,
  DescribeKeyCommand,
  DisableKeyCommand,
  EnableKeyCommand,
  EncryptCommand,
  type EncryptionAlgorithmSpec,
  GenerateDataKeyCommand,
  GenerateDataKeyWithoutPlaintextCommand,
  GenerateRandomCommand,
  type KeyMetadata,
  type KMSClient,
  ReEncryptCommand,
  ScheduleKeyDeletionCommand,
} from '@aws-sdk/client-kms';
import { expectKmsError, TestServer } from '../support/server';
import { describeEachToken } from '../support/test-tokens';

type Context = Record<string, string>;
type KmsFailure = Awaited<ReturnType<typeof expectKmsError>>;

const INCORRECT_KEY = 'The key ID in the request does not identify a CMK that can perform this operation.';
const DRY_RUN = 'The request would have succeeded, but the DryRun option is set.';

/** The request id the SDK read from the x-amzn-RequestId response header. */
function requestIdOf(err: KmsFailure): string {
  return (err.$metadata as { requestId?: string } | undefined)?.requestId ?? '';
}

/** Response members other than the SDK's $metadata, sorted. */
function fields(output: object): string[] {
  return Object.entries(output)
    .filter(([k, v]) => k !== '$metadata' && v !== undefined)
    .map(([k]) => k)
    .sort();
}

/**
 * The SDK turns an empty error message into "UnknownError", so the recorded AWS texts
 * (InvalidCiphertextException has an empty message) are checked on the wire: this
 * middleware keeps every error response body, by request id, before the SDK parses it.
 */
function recordErrorBodies(client: KMSClient): Map<string, string> {
  const bodies = new Map<string, string>();
  client.middlewareStack.add(
    (next) => async (args) => {
      const out = await next(args);
      const response = out.response as { statusCode?: number; headers?: Record<string, string>; body?: unknown };
      if ((response.statusCode ?? 200) >= 400 && response.body !== undefined) {
        const chunks: Buffer[] = [];
        for await (const chunk of response.body as AsyncIterable<Uint8Array>) chunks.push(Buffer.from(chunk));
        const raw = Buffer.concat(chunks);
        bodies.set(response.headers?.['x-amzn-requestid'] ?? '', raw.toString('utf8'));
        response.body = Readable.from([raw]);
      }
      return out;
    },
    { step: 'deserialize', priority: 'low', name: 'recordErrorBodies' },
  );
  return bodies;
}

describeEachToken('crypto: Encrypt, Decrypt, GenerateDataKey, ReEncrypt, GenerateRandom', function (token) {
  let server: TestServer;
  let kms: KMSClient;
  let errorBodies: Map<string, string>;
  let keyA: KeyMetadata;
  let keyB: KeyMetadata;
  const aliasA = 'alias/crypto-a';
  const aliasArnA = `arn:aws:kms:us-east-1:111122223333:${aliasA}`;

  async function createKey(): Promise<KeyMetadata> {
    const { KeyMetadata } = await kms.send(new CreateKeyCommand({}));
    return KeyMetadata!;
  }

  async function currentMaterialId(keyId: string): Promise<string> {
    const { KeyMetadata } = await kms.send(new DescribeKeyCommand({ KeyId: keyId }));
    expect(KeyMetadata!.CurrentKeyMaterialId, 'DescribeKey CurrentKeyMaterialId').to.be.a('string').and.not.be.empty;
    return KeyMetadata!.CurrentKeyMaterialId!;
  }

  async function encrypt(keyId: string, plaintext: Buffer, context?: Context): Promise<Buffer> {
    const out = await kms.send(new EncryptCommand({ KeyId: keyId, Plaintext: plaintext, EncryptionContext: context }));
    return Buffer.from(out.CiphertextBlob!);
  }

  function decrypt(blob: Uint8Array, context?: Context, keyId?: string): Promise<DecryptCommandOutput> {
    return kms.send(new DecryptCommand({ CiphertextBlob: blob, EncryptionContext: context, KeyId: keyId }));
  }

  /** The parsed JSON error body the server sent for a failed request. */
  function wireError(err: KmsFailure): { __type?: string; message?: string } {
    const body = errorBodies.get(requestIdOf(err));
    expect(body, `raw error body of ${err.name}`).to.be.a('string');
    return JSON.parse(body!) as { __type?: string; message?: string };
  }

  /** Expects `name` with HTTP 400 and, when given, the exact (string) or matching (RegExp) message on the wire. */
  async function expectError(promise: Promise<unknown>, name: string, message?: string | RegExp): Promise<KmsFailure> {
    const err = await expectKmsError(promise);
    expect(err.name, `error ${err.name}: ${err.message}`).to.equal(name);
    expect(err.$metadata?.httpStatusCode, `HTTP status of ${name}`).to.equal(400);
    if (message !== undefined) {
      const wire = wireError(err);
      if (typeof message === 'string') expect(wire.message, `message of ${name}`).to.equal(message);
      else expect(wire.message, `message of ${name}`).to.match(message);
    }
    return err;
  }

  const expectInvalidCiphertext = (promise: Promise<unknown>) => expectError(promise, 'InvalidCiphertextException', '');

  before(async function () {
    server = await TestServer.start();
    kms = server.client();
    errorBodies = recordErrorBodies(kms);
    keyA = await createKey();
    keyB = await createKey();
    await kms.send(new CreateAliasCommand({ AliasName: aliasA, TargetKeyId: keyA.KeyId }));
  });

  after(async function () {
    kms?.destroy();
    await server?.stop();
  });

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
      const unexpected: string[] = [];
      for (let i = 0; i < blob.length; i++) {
        const tampered = Buffer.from(blob);
        tampered[i] ^= 0x01;
        try {
          const out = await decrypt(tampered, context);
          unexpected.push(`byte ${i}: decrypted to ${Buffer.from(out.Plaintext!).toString('hex')}`);
        } catch (e) {
          const err = e as KmsFailure;
          const body = errorBodies.get(requestIdOf(err));
          if (err.name !== 'InvalidCiphertextException' || err.$metadata?.httpStatusCode !== 400 || body === undefined || JSON.parse(body).message !== '') {
            unexpected.push(`byte ${i}: ${err.$metadata?.httpStatusCode} ${err.name} ${body ?? err.message}`);
          }
        }
      }
      expect(unexpected, `flipped bytes of a ${blob.length}-byte blob`).to.deep.equal([]);
      // The untouched blob still decrypts: the failures above came from the flips.
      expect(Buffer.from((await decrypt(blob, context)).Plaintext!).equals(plaintext)).to.equal(true);
    });

    it('refuses every single-bit flip of a GenerateDataKeyWithoutPlaintext blob', async function () {
      this.timeout(60_000);
      const context = { flip: 'wrapped' };
      const out = await kms.send(new GenerateDataKeyWithoutPlaintextCommand({ KeyId: keyA.KeyId, NumberOfBytes: 13, EncryptionContext: context }));
      const blob = Buffer.from(out.CiphertextBlob!);
      const unexpected: string[] = [];
      for (let i = 0; i < blob.length; i++) {
        const tampered = Buffer.from(blob);
        tampered[i] ^= 0x01;
        try {
          const dec = await decrypt(tampered, context);
          unexpected.push(`byte ${i}: decrypted to ${dec.Plaintext?.length} bytes`);
        } catch (e) {
          const err = e as KmsFailure;
          const body = errorBodies.get(requestIdOf(err));
          if (err.name !== 'InvalidCiphertextException' || err.$metadata?.httpStatusCode !== 400 || body === undefined || JSON.parse(body).message !== '') {
            unexpected.push(`byte ${i}: ${err.$metadata?.httpStatusCode} ${err.name} ${body ?? err.message}`);
          }
        }
      }
      expect(unexpected, `flipped bytes of a ${blob.length}-byte blob`).to.deep.equal([]);
      expect((await decrypt(blob, context)).Plaintext).to.have.length(13);
    });

    it('refuses every truncation of a blob with InvalidCiphertextException', async function () {
      this.timeout(60_000);
      const context = { cut: 'here' };
      const blob = await encrypt(keyA.KeyId!, randomBytes(16), context);
      const unexpected: string[] = [];
      for (let length = 1; length < blob.length; length++) {
        try {
          await decrypt(blob.subarray(0, length), context);
          unexpected.push(`${length} bytes: decrypted`);
        } catch (e) {
          const err = e as KmsFailure;
          const body = errorBodies.get(requestIdOf(err));
          if (err.name !== 'InvalidCiphertextException' || err.$metadata?.httpStatusCode !== 400 || body === undefined || JSON.parse(body).message !== '') {
            unexpected.push(`${length} bytes: ${err.$metadata?.httpStatusCode} ${err.name} ${body ?? err.message}`);
          }
        }
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
      for (const [what, attempt] of attempts) {
        const err = await expectKmsError(attempt);
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
      for (const [what, attempt] of attempts) {
        const err = await expectKmsError(attempt);
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
      for (const [what, attempt] of attempts) {
        const err = await expectKmsError(attempt);
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
