/**
 * The AWS Encryption SDK for JavaScript (@aws-crypto/client-node), unmodified, using p11kms
 * as its KMS: its KMS keyring calls GenerateDataKey, Encrypt and Decrypt and checks the
 * responses strictly (key ARNs, data key lengths, encryption context).
 */
import { randomBytes } from 'node:crypto';
import { expect } from 'chai';
import {
  buildAwsKmsMrkAwareDiscoveryMultiKeyringNode,
  buildAwsKmsMrkAwareStrictMultiKeyringNode,
  buildClient,
  CommitmentPolicy,
  getClient,
  KMS,
  KmsKeyringNode,
} from '@aws-crypto/client-node';
import {
  CreateAliasCommand,
  CreateKeyCommand,
  DisableKeyCommand,
  EnableKeyCommand,
  ReplicateKeyCommand,
  type KeyMetadata,
  type KMSClient,
} from '@aws-sdk/client-kms';
import { serverPerSuite, type TestServer } from '../support/server';

const { encrypt, decrypt } = buildClient(CommitmentPolicy.REQUIRE_ENCRYPT_REQUIRE_DECRYPT);

describe('AWS Encryption SDK for JavaScript end to end', function () {
  this.timeout(60_000);
  let server: TestServer;
  let kms: KMSClient;
  let keyA: KeyMetadata;
  let keyB: KeyMetadata;
  let keyC: KeyMetadata;
  const aliasArnA = 'arn:aws:kms:us-east-1:111122223333:alias/esdk-a';
  const context = { purpose: 'esdk-test', tenant: 'acme', 'order-id': '12345' };
  const message = randomBytes(1024 * 1024);

  /** The ESDK's own client supplier (one KMS client per region), pointed at p11kms. */
  function clientProvider() {
    return getClient(KMS, {
      endpoint: server.endpoint,
      credentials: { accessKeyId: 'AKIDESDK', secretAccessKey: 'esdk-secret' },
      maxAttempts: 1,
    });
  }

  function keyring(generatorKeyId: string, keyIds: string[] = []): KmsKeyringNode {
    return new KmsKeyringNode({ generatorKeyId, keyIds, clientProvider: clientProvider() });
  }

  serverPerSuite({}, (started, client) => ([server, kms] = [started, client]));
  before(async function () {
    const create = async () => (await kms.send(new CreateKeyCommand({ Description: 'esdk' }))).KeyMetadata!;
    keyA = await create();
    keyB = await create();
    keyC = await create();
    await kms.send(new CreateAliasCommand({ AliasName: 'alias/esdk-a', TargetKeyId: keyA.KeyId }));
  });

  it('encrypts a 1 MiB message with a key-ARN keyring and decrypts it with its context', async function () {
    const ring = keyring(keyA.Arn!);
    const { result, messageHeader } = await encrypt(ring, message, { encryptionContext: context });
    expect(result.length).to.be.greaterThan(message.length);
    expect(result.includes(message.subarray(0, 64)), 'plaintext visible in the message').to.equal(false);
    expect(messageHeader.encryptedDataKeys).to.have.length(1);
    expect(messageHeader.encryptedDataKeys[0].providerId).to.equal('aws-kms');
    expect(messageHeader.encryptedDataKeys[0].providerInfo).to.equal(keyA.Arn);

    const out = await decrypt(ring, result);
    expect(out.plaintext.equals(message)).to.equal(true);
    expect(out.messageHeader.encryptionContext).to.include(context);
    // The ESDK adds its signing key to the context that KMS authenticated.
    expect(out.messageHeader.encryptionContext).to.have.property('aws-crypto-public-key');
  });

  it('encrypts with an alias-ARN generator; the message names the key ARN and decrypts with it', async function () {
    const { result, messageHeader } = await encrypt(keyring(aliasArnA), message, { encryptionContext: context });
    expect(messageHeader.encryptedDataKeys.map((k) => k.providerInfo)).to.deep.equal([keyA.Arn]);
    const out = await decrypt(keyring(keyA.Arn!), result);
    expect(out.plaintext.equals(message)).to.equal(true);
    expect(out.messageHeader.encryptionContext).to.include(context);
    // A discovery keyring asks KMS with the ARN stored in the message.
    const discovered = await decrypt(new KmsKeyringNode({ discovery: true, clientProvider: clientProvider() }), result);
    expect(discovered.plaintext.equals(message)).to.equal(true);
  });

  it('encrypts for two keys; either key alone decrypts, a third key cannot', async function () {
    const { result, messageHeader } = await encrypt(keyring(keyA.Arn!, [keyB.Arn!]), message, { encryptionContext: context });
    expect(messageHeader.encryptedDataKeys.map((k) => k.providerInfo)).to.deep.equal([keyA.Arn, keyB.Arn]);

    const withA = await decrypt(keyring(keyA.Arn!), result);
    expect(withA.plaintext.equals(message), 'decrypted with key A alone').to.equal(true);
    expect(withA.messageHeader.encryptionContext).to.include(context);

    const withB = await decrypt(keyring(keyB.Arn!), result);
    expect(withB.plaintext.equals(message), 'decrypted with key B alone').to.equal(true);
    expect(withB.messageHeader.encryptionContext).to.include(context);

    let refused: unknown;
    try {
      await decrypt(keyring(keyC.Arn!), result);
    } catch (err) {
      refused = err;
    }
    expect(refused, 'decrypt with an unrelated key').to.be.instanceOf(Error);
  });

  it('a keyring whose generator is an unrelated key decrypts through its other key id', async function () {
    const { result } = await encrypt(keyring(keyA.Arn!, [keyB.Arn!]), Buffer.from('small message'), { encryptionContext: context });
    const out = await decrypt(keyring(keyC.Arn!, [keyB.Arn!]), result);
    expect(out.plaintext.toString()).to.equal('small message');
  });

  it("surfaces the service's refusal: with B disabled, B's keyring fails and A's still decrypts", async function () {
    const { result } = await encrypt(keyring(keyA.Arn!, [keyB.Arn!]), message, { encryptionContext: context });
    await kms.send(new DisableKeyCommand({ KeyId: keyB.KeyId }));
    try {
      let refused: Error | undefined;
      try {
        await decrypt(keyring(keyB.Arn!), result);
      } catch (err) {
        refused = err as Error;
      }
      expect(refused, 'decrypt through a disabled key').to.be.instanceOf(Error);
      expect(String(refused!.message)).to.include('is disabled');
      expect((await decrypt(keyring(keyA.Arn!), result)).plaintext.equals(message)).to.equal(true);
    } finally {
      await kms.send(new EnableKeyCommand({ KeyId: keyB.KeyId }));
    }
  });

  /** Runs `attempt`; the error it throws (the test fails if it does not throw). */
  async function refusal(attempt: () => Promise<unknown>): Promise<Error> {
    try {
      await attempt();
    } catch (err) {
      return err as Error;
    }
    throw new Error('expected a refusal, but the message decrypted');
  }

  it('a discovery keyring filtered to this account decrypts; one filtered to another account refuses', async function () {
    const { result } = await encrypt(keyring(keyA.Arn!), message, { encryptionContext: context });
    const discovery = (accountIDs: string[]) =>
      new KmsKeyringNode({ discovery: true, discoveryFilter: { accountIDs, partition: 'aws' }, clientProvider: clientProvider() });
    expect((await decrypt(discovery(['111122223333']), result)).plaintext.equals(message)).to.equal(true);
    // The ESDK skips data keys of other accounts without asking KMS, so nothing decrypts them.
    await refusal(() => decrypt(discovery(['444455556666']), result));
  });

  describe('multi-Region keys through the MRK-aware keyrings', function () {
    let primary: KeyMetadata;
    let replica: KeyMetadata;
    const mrkStrict = (keyId: string) => buildAwsKmsMrkAwareStrictMultiKeyringNode({ generatorKeyId: keyId, clientProvider: clientProvider() });
    const mrkDiscovery = (region: string) => buildAwsKmsMrkAwareDiscoveryMultiKeyringNode({ regions: [region], clientProvider: clientProvider() });

    before(async function () {
      primary = (await kms.send(new CreateKeyCommand({ MultiRegion: true, Description: 'esdk mrk' }))).KeyMetadata!;
      replica = (await kms.send(new ReplicateKeyCommand({ KeyId: primary.KeyId, ReplicaRegion: 'us-west-2' }))).ReplicaKeyMetadata!;
    });

    it("a message made with the primary in us-east-1 decrypts with the replica's ARN in us-west-2, and the other way round", async function () {
      const fromPrimary = await encrypt(mrkStrict(primary.Arn!), message, { encryptionContext: context });
      expect(fromPrimary.messageHeader.encryptedDataKeys.map((k) => k.providerInfo)).to.deep.equal([primary.Arn]);
      expect((await decrypt(mrkStrict(replica.Arn!), fromPrimary.result)).plaintext.equals(message)).to.equal(true);

      const fromReplica = await encrypt(mrkStrict(replica.Arn!), message, { encryptionContext: context });
      expect(fromReplica.messageHeader.encryptedDataKeys.map((k) => k.providerInfo)).to.deep.equal([replica.Arn]);
      expect((await decrypt(mrkStrict(primary.Arn!), fromReplica.result)).plaintext.equals(message)).to.equal(true);
    });

    it('an MRK discovery keyring decrypts in a region holding a replica, and gets NotFoundException in one without', async function () {
      const { result } = await encrypt(mrkStrict(primary.Arn!), message, { encryptionContext: context });
      expect((await decrypt(mrkDiscovery('us-west-2'), result)).plaintext.equals(message)).to.equal(true);
      const refused = await refusal(() => decrypt(mrkDiscovery('eu-west-1'), result));
      expect(refused.message).to.include(`NotFoundException: Key '${primary.Arn!.replace('us-east-1', 'eu-west-1')}' does not exist`);
    });
  });

  // In a describe of its own so that it runs after the nested describes' tests too.
  describe('afterwards', function () {
    it('recorded no unexpected failure in the server log', function () {
      expect(server.stderr()).not.to.include('unexpected failure');
    });
  });
});
