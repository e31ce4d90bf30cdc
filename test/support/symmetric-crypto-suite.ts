/**
 * What the symmetric crypto suites (crypto-encrypt-decrypt, crypto-data-keys) share: a server
 * of each suite's own with two keys and an alias, a client that keeps every error response
 * body, and the calls and checks their tests build on. They compare p11kms with AWS's recorded
 * behaviour (/work/shared/aws-model/recorded-aws-responses.md).
 */
import { Readable } from 'node:stream';
import { expect } from 'chai';
import {
  CreateAliasCommand,
  CreateKeyCommand,
  DecryptCommand,
  type DecryptCommandOutput,
  DescribeKeyCommand,
  EncryptCommand,
  type KeyMetadata,
  type KMSClient,
} from '@aws-sdk/client-kms';
import { ACCOUNT } from './regional-clients';
import { expectKmsError, serverPerSuite, type TestServer } from './server';

export type Context = Record<string, string>;
export type KmsFailure = Awaited<ReturnType<typeof expectKmsError>>;

export const INCORRECT_KEY = 'The key ID in the request does not identify a CMK that can perform this operation.';

/** The alias the suite creates for keyA. */
export const aliasA = 'alias/crypto-a';
export const aliasArnA = `arn:aws:kms:us-east-1:${ACCOUNT}:${aliasA}`;

/** The request id the SDK read from the x-amzn-RequestId response header. */
export function requestIdOf(err: KmsFailure): string {
  return (err.$metadata as { requestId?: string } | undefined)?.requestId ?? '';
}

/** Response members other than the SDK's $metadata, sorted. */
export function fields(output: object): string[] {
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

/** What the before hook starts and creates. */
export interface CryptoRig {
  server: TestServer;
  kms: KMSClient;
  /** Every error response body the client received, by request id. */
  errorBodies: Map<string, string>;
  /** The target of aliasA. */
  keyA: KeyMetadata;
  keyB: KeyMetadata;
}

export interface SymmetricCryptoSuite {
  /** Filled in by the before hook; the object itself is handed out at once. */
  rig: CryptoRig;
  createKey(): Promise<KeyMetadata>;
  currentMaterialId(keyId: string): Promise<string>;
  encrypt(keyId: string, plaintext: Buffer, context?: Context): Promise<Buffer>;
  decrypt(blob: Uint8Array, context?: Context, keyId?: string): Promise<DecryptCommandOutput>;
  /** The parsed JSON error body the server sent for a failed request. */
  wireError(err: KmsFailure): { __type?: string; message?: string };
  /** Expects `name` with HTTP 400 and, when given, the exact (string) or matching (RegExp) message on the wire. */
  expectError(promise: Promise<unknown>, name: string, message?: string | RegExp): Promise<KmsFailure>;
  expectInvalidCiphertext(promise: Promise<unknown>): Promise<KmsFailure>;
}

/** Registers before/after hooks in the calling describe: the rig above, stopped after its tests. */
export function symmetricCryptoSuite(): SymmetricCryptoSuite {
  const rig = {} as CryptoRig;

  async function createKey(): Promise<KeyMetadata> {
    const { KeyMetadata } = await rig.kms.send(new CreateKeyCommand({}));
    return KeyMetadata!;
  }

  function wireError(err: KmsFailure): { __type?: string; message?: string } {
    const body = rig.errorBodies.get(requestIdOf(err));
    expect(body, `raw error body of ${err.name}`).to.be.a('string');
    return JSON.parse(body!) as { __type?: string; message?: string };
  }

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

  serverPerSuite({}, (server, kms) => ([rig.server, rig.kms] = [server, kms]));
  before(async function () {
    rig.errorBodies = recordErrorBodies(rig.kms);
    rig.keyA = await createKey();
    rig.keyB = await createKey();
    await rig.kms.send(new CreateAliasCommand({ AliasName: aliasA, TargetKeyId: rig.keyA.KeyId }));
  });

  return {
    rig,
    createKey,
    async currentMaterialId(keyId) {
      const { KeyMetadata } = await rig.kms.send(new DescribeKeyCommand({ KeyId: keyId }));
      expect(KeyMetadata!.CurrentKeyMaterialId, 'DescribeKey CurrentKeyMaterialId').to.be.a('string').and.not.be.empty;
      return KeyMetadata!.CurrentKeyMaterialId!;
    },
    async encrypt(keyId, plaintext, context) {
      const out = await rig.kms.send(new EncryptCommand({ KeyId: keyId, Plaintext: plaintext, EncryptionContext: context }));
      return Buffer.from(out.CiphertextBlob!);
    },
    decrypt(blob, context, keyId) {
      return rig.kms.send(new DecryptCommand({ CiphertextBlob: blob, EncryptionContext: context, KeyId: keyId }));
    },
    wireError,
    expectError,
    expectInvalidCiphertext: (promise) => expectError(promise, 'InvalidCiphertextException', ''),
  };
}
