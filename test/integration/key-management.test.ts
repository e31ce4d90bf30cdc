import {
  CancelKeyDeletionCommand,
  CreateAliasCommand,
  type CreateKeyCommandInput,
  CreateKeyCommand,
  DecryptCommand,
  DescribeKeyCommand,
  DisableKeyCommand,
  EnableKeyCommand,
  EncryptCommand,
  type KeyListEntry,
  type KeyMetadata,
  KMSClient,
  ListAliasesCommand,
  ListKeysCommand,
  ScheduleKeyDeletionCommand,
  type Tag,
  UpdateKeyDescriptionCommand,
} from '@aws-sdk/client-kms';
import { randomUUID } from 'node:crypto';
import { expect } from 'chai';
import { expectKmsError, TestServer } from '../support/server';

const ACCOUNT = '111122223333';
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
const DAY_MS = 24 * 60 * 60 * 1000;
const PLAINTEXT = Buffer.from('the quick brown fox');

/** Every KeyMetadata member AWS returns for a default symmetric key (recorded-aws-responses.md §1). */
const SYMMETRIC_FIELDS = [
  'AWSAccountId',
  'Arn',
  'CreationDate',
  'CurrentKeyMaterialId',
  'CustomerMasterKeySpec',
  'Description',
  'Enabled',
  'EncryptionAlgorithms',
  'KeyId',
  'KeyManager',
  'KeySpec',
  'KeyState',
  'KeyUsage',
  'MultiRegion',
  'Origin',
];

/**
 * Regions nobody else in this file uses, one per test that counts what a region holds.
 * Keys and aliases are regional, so a fresh region is an empty account.
 */
const FRESH_REGIONS = [
  'ap-south-1',
  'ap-south-2',
  'ap-southeast-1',
  'ap-southeast-2',
  'ap-southeast-3',
  'ap-northeast-1',
  'ap-northeast-2',
  'ap-northeast-3',
  'ca-central-1',
  'sa-east-1',
  'me-south-1',
  'af-south-1',
  'eu-north-1',
  'eu-south-1',
  'il-central-1',
  'us-east-2',
  'us-west-1',
  'eu-west-2',
  'eu-west-3',
  'eu-central-2',
  'eu-south-2',
  'me-central-1',
  'ca-west-1',
  'ap-east-1',
  'ap-southeast-4',
  'mx-central-1',
];
let freshRegionIndex = 0;
function freshRegion(): string {
  const region = FRESH_REGIONS[freshRegionIndex++];
  if (region === undefined) throw new Error('test file ran out of fresh regions');
  return region;
}

describe('key management (CreateKey, DescribeKey, ListKeys, key state)', function () {
  let server: TestServer;
  const clients = new Map<string, KMSClient>();

  function kms(region = 'us-east-1'): KMSClient {
    let client = clients.get(region);
    if (!client) {
      client = server.client({ region });
      clients.set(region, client);
    }
    return client;
  }

  async function createKey(region = 'us-east-1', input: CreateKeyCommandInput = {}): Promise<KeyMetadata> {
    const out = await kms(region).send(new CreateKeyCommand(input));
    expect(out.KeyMetadata, 'CreateKey returns KeyMetadata').to.be.an('object');
    return out.KeyMetadata!;
  }

  async function describeKey(keyId: string, region = 'us-east-1'): Promise<KeyMetadata> {
    const out = await kms(region).send(new DescribeKeyCommand({ KeyId: keyId }));
    return out.KeyMetadata!;
  }

  async function listAllKeys(region: string, limit?: number): Promise<KeyListEntry[]> {
    const all: KeyListEntry[] = [];
    let marker: string | undefined;
    for (let page = 0; page < 100; page++) {
      const out = await kms(region).send(new ListKeysCommand({ Limit: limit, Marker: marker }));
      all.push(...(out.Keys ?? []));
      if (!out.Truncated) return all;
      marker = out.NextMarker;
    }
    throw new Error('ListKeys never stopped paging');
  }

  function arnOf(region: string, keyId: string): string {
    return `arn:aws:kms:${region}:${ACCOUNT}:key/${keyId}`;
  }

  function aliasName(): string {
    return `alias/km-${randomUUID()}`;
  }

  before(async function () {
    server = await TestServer.start();
  });

  after(async function () {
    for (const client of clients.values()) client.destroy();
    await server?.stop();
  });

  describe('CreateKey', function () {
    it('creates a default symmetric key with exactly the KeyMetadata AWS returns', async function () {
      const before = Date.now();
      const md = await createKey('us-east-1');
      const after = Date.now();

      expect(Object.keys(md).sort()).to.deep.equal(SYMMETRIC_FIELDS);
      expect(md.KeyId).to.match(UUID);
      expect(md.Arn).to.equal(`arn:aws:kms:us-east-1:${ACCOUNT}:key/${md.KeyId}`);
      expect(md.AWSAccountId).to.equal(ACCOUNT);
      expect(md.CreationDate).to.be.instanceOf(Date);
      expect(md.CreationDate!.getTime()).to.be.within(before - 2000, after + 2000);
      expect(md.Description).to.equal('');
      expect(md.Enabled).to.equal(true);
      expect(md.KeyState).to.equal('Enabled');
      expect(md.KeyUsage).to.equal('ENCRYPT_DECRYPT');
      expect(md.KeySpec).to.equal('SYMMETRIC_DEFAULT');
      expect(md.CustomerMasterKeySpec).to.equal('SYMMETRIC_DEFAULT');
      expect(md.EncryptionAlgorithms).to.deep.equal(['SYMMETRIC_DEFAULT']);
      expect(md.KeyManager).to.equal('CUSTOMER');
      expect(md.MultiRegion).to.equal(false);
      expect(md.Origin).to.equal('AWS_KMS');
      expect(md.CurrentKeyMaterialId).to.match(/^[0-9a-f]{64}$/);

      // DescribeKey returns the same object.
      const described = await describeKey(md.KeyId!);
      expect(described).to.deep.equal(md);
    });

    it('puts the ARN in the region the request was signed for', async function () {
      const md = await createKey('eu-central-1');
      expect(md.Arn).to.equal(arnOf('eu-central-1', md.KeyId!));
    });

    it('gives every key its own id and key material id', async function () {
      const a = await createKey();
      const b = await createKey();
      expect(a.KeyId).to.not.equal(b.KeyId);
      expect(a.CurrentKeyMaterialId).to.not.equal(b.CurrentKeyMaterialId);
    });

    it('keeps the Description and accepts Tags', async function () {
      const tags: Tag[] = [
        { TagKey: 'project', TagValue: 'p11kms' },
        { TagKey: 'empty', TagValue: '' },
      ];
      const md = await createKey('us-east-1', { Description: 'payroll data key', Tags: tags });
      expect(md.Description).to.equal('payroll data key');
      expect((await describeKey(md.KeyId!)).Description).to.equal('payroll data key');
    });

    it('accepts KeyUsage ENCRYPT_DECRYPT and KeySpec SYMMETRIC_DEFAULT given explicitly', async function () {
      const md = await createKey('us-east-1', { KeyUsage: 'ENCRYPT_DECRYPT', KeySpec: 'SYMMETRIC_DEFAULT' });
      expect(md.KeyUsage).to.equal('ENCRYPT_DECRYPT');
      expect(md.KeySpec).to.equal('SYMMETRIC_DEFAULT');
    });

    it('accepts a key policy that is a JSON document', async function () {
      const policy = JSON.stringify({
        Version: '2012-10-17',
        Statement: [{ Sid: 'root', Effect: 'Allow', Principal: { AWS: `arn:aws:iam::${ACCOUNT}:root` }, Action: 'kms:*', Resource: '*' }],
      });
      const md = await createKey('us-east-1', { Policy: policy });
      expect(md.KeyState).to.equal('Enabled');
    });

    it('rejects KeyUsage SIGN_VERIFY for a SYMMETRIC_DEFAULT key', async function () {
      const err = await expectKmsError(kms().send(new CreateKeyCommand({ KeyUsage: 'SIGN_VERIFY' })));
      expect(err.name).to.equal('ValidationException');
      expect(err.message).to.equal('KeyUsage SIGN_VERIFY is not compatible with KeySpec SYMMETRIC_DEFAULT');
      expect(err.$metadata?.httpStatusCode).to.equal(400);
    });

    for (const keySpec of ['ECC_NIST_P256', 'RSA_2048', 'HMAC_256'] as const) {
      it(`requires a KeyUsage for KeySpec ${keySpec}`, async function () {
        const err = await expectKmsError(kms().send(new CreateKeyCommand({ KeySpec: keySpec })));
        expect(err.name).to.equal('ValidationException');
        expect(err.message).to.equal('You must specify a KeyUsage value for all KMS keys except for symmetric encryption keys.');
      });
    }

    it('rejects KeyUsage KEY_AGREEMENT with KeySpec RSA_2048 as AWS does', async function () {
      const err = await expectKmsError(kms().send(new CreateKeyCommand({ KeySpec: 'RSA_2048', KeyUsage: 'KEY_AGREEMENT' })));
      expect(err.name).to.equal('ValidationException');
      expect(err.message).to.equal('KeyUsage KEY_AGREEMENT is not compatible with KeySpec RSA_2048');
    });

    // The model's CreateKey KeyUsage: "For asymmetric KMS keys with ECC_SECG_P256K1 key pairs, specify
    // SIGN_VERIFY"; KEY_AGREEMENT is for the NIST-standard curves (and SM2) only.
    it('rejects KeyUsage KEY_AGREEMENT with KeySpec ECC_SECG_P256K1 (secp256k1 keys only sign) as AWS does', async function () {
      const err = await expectKmsError(kms().send(new CreateKeyCommand({ KeySpec: 'ECC_SECG_P256K1', KeyUsage: 'KEY_AGREEMENT' })));
      expect(err.name).to.equal('ValidationException');
      expect(err.message).to.equal('KeyUsage KEY_AGREEMENT is not compatible with KeySpec ECC_SECG_P256K1');
    });

    it('rejects a KeySpec outside the enum with the AWS validation message', async function () {
      const input = { KeySpec: 'HMAC_random' } as unknown as CreateKeyCommandInput;
      const err = await expectKmsError(kms().send(new CreateKeyCommand(input)));
      expect(err.name).to.equal('ValidationException');
      const prefix = "1 validation error detected: Value 'HMAC_random' at 'keySpec' failed to satisfy constraint: Member must satisfy enum value set: [";
      expect(err.message.startsWith(prefix), err.message).to.equal(true);
      expect(err.message.endsWith(']'), err.message).to.equal(true);
      const listed = err.message.slice(prefix.length, -1).split(', ');
      // The set is unordered on AWS; every recorded spec must be in it.
      expect(listed).to.include.members([
        'RSA_2048', 'ECC_NIST_P384', 'ECC_NIST_P256', 'ECC_NIST_P521', 'HMAC_384', 'RSA_3072',
        'ECC_SECG_P256K1', 'RSA_4096', 'SYMMETRIC_DEFAULT', 'HMAC_256', 'HMAC_224', 'HMAC_512',
      ]);
    });

    it('rejects a KeyUsage outside the enum with the AWS validation message', async function () {
      const input = { KeyUsage: 'RANDOM' } as unknown as CreateKeyCommandInput;
      const err = await expectKmsError(kms().send(new CreateKeyCommand(input)));
      expect(err.name).to.equal('ValidationException');
      const prefix = "1 validation error detected: Value 'RANDOM' at 'keyUsage' failed to satisfy constraint: Member must satisfy enum value set: [";
      expect(err.message.startsWith(prefix), err.message).to.equal(true);
      const listed = err.message.slice(prefix.length, -1).split(', ');
      expect(listed).to.include.members(['ENCRYPT_DECRYPT', 'SIGN_VERIFY', 'GENERATE_VERIFY_MAC']);
    });

    const notBuilt: Array<[string, CreateKeyCommandInput]> = [
      // SoftHSM2 has no mechanism for these specs.
      ['SM2 SIGN_VERIFY', { KeySpec: 'SM2', KeyUsage: 'SIGN_VERIFY' }],
      ['ML_DSA_65 SIGN_VERIFY', { KeySpec: 'ML_DSA_65', KeyUsage: 'SIGN_VERIFY' }],
      // RSA and ECC (NIST, secp256k1) private keys are importable; Edwards-curve keys are not.
      ['Origin EXTERNAL with an Edwards-curve key spec', { Origin: 'EXTERNAL', KeySpec: 'ECC_NIST_EDWARDS25519', KeyUsage: 'SIGN_VERIFY' }],
      ['MultiRegion with imported material', { MultiRegion: true, Origin: 'EXTERNAL' }],
    ];
    for (const [label, input] of notBuilt) {
      it(`answers UnsupportedOperationException for ${label} and creates no key`, async function () {
        const region = freshRegion();
        const err = await expectKmsError(kms(region).send(new CreateKeyCommand(input)));
        expect(err.name).to.equal('UnsupportedOperationException');
        expect(err.message).to.be.a('string').and.not.equal('');
        expect(err.$metadata?.httpStatusCode).to.equal(400);
        expect(await listAllKeys(region)).to.deep.equal([]);
      });
    }

    describe('tags', function () {
      const tagCases: Array<[string, Tag[], string]> = [
        ['duplicate tag keys', [{ TagKey: 'a', TagValue: '1' }, { TagKey: 'a', TagValue: '2' }], 'Duplicate tag keys'],
        [
          'more than 50 tags',
          Array.from({ length: 51 }, (_, i) => ({ TagKey: `k${i}`, TagValue: `v${i}` })),
          'Too many tags',
        ],
        ['a tag key starting with aws:', [{ TagKey: 'aws:owner', TagValue: 'x' }], 'Tags beginning with aws: are reserved'],
        ['a tag key starting with AWS: (any case)', [{ TagKey: 'AwS:owner', TagValue: 'x' }], 'Tags beginning with aws: are reserved'],
      ];
      for (const [label, tags, message] of tagCases) {
        it(`rejects ${label} with TagException and creates no key`, async function () {
          const region = freshRegion();
          const err = await expectKmsError(kms(region).send(new CreateKeyCommand({ Tags: tags })));
          expect(err.name).to.equal('TagException');
          expect(err.message).to.equal(message);
          expect(await listAllKeys(region)).to.deep.equal([]);
        });
      }

      it('accepts exactly 50 tags', async function () {
        const tags = Array.from({ length: 50 }, (_, i) => ({ TagKey: `k${i}`, TagValue: `v${i}` }));
        const md = await createKey('us-east-1', { Tags: tags });
        expect(md.KeyState).to.equal('Enabled');
      });

      it('rejects a tag value over 256 characters with the AWS validation message', async function () {
        const value = 'v'.repeat(257);
        const err = await expectKmsError(kms().send(new CreateKeyCommand({ Tags: [{ TagKey: 'k', TagValue: value }] })));
        expect(err.name).to.equal('ValidationException');
        expect(err.message).to.equal(
          `1 validation error detected: Value '${value}' at 'tags.1.member.tagValue' failed to satisfy constraint: Member must have length less than or equal to 256`,
        );
      });

      it('rejects a tag key over 128 characters with the AWS validation message', async function () {
        const key = 'k'.repeat(129);
        const err = await expectKmsError(kms().send(new CreateKeyCommand({ Tags: [{ TagKey: key, TagValue: 'v' }] })));
        expect(err.name).to.equal('ValidationException');
        expect(err.message).to.equal(
          `1 validation error detected: Value '${key}' at 'tags.1.member.tagKey' failed to satisfy constraint: Member must have length less than or equal to 128`,
        );
      });
    });

    it('rejects a key policy that is not JSON with MalformedPolicyDocumentException and creates no key', async function () {
      const region = freshRegion();
      const err = await expectKmsError(kms(region).send(new CreateKeyCommand({ Policy: 'this is not a policy {' })));
      expect(err.name).to.equal('MalformedPolicyDocumentException');
      expect(err.message).to.be.a('string').and.not.equal('');
      expect(await listAllKeys(region)).to.deep.equal([]);
    });
  });

  describe('DescribeKey', function () {
    it('finds a key by key id, key ARN, alias name and alias ARN', async function () {
      const md = await createKey('us-east-1', { Description: 'describe me' });
      const alias = aliasName();
      await kms().send(new CreateAliasCommand({ AliasName: alias, TargetKeyId: md.KeyId }));

      const refs = [md.KeyId!, md.Arn!, alias, `arn:aws:kms:us-east-1:${ACCOUNT}:${alias}`];
      for (const ref of refs) {
        const found = await describeKey(ref);
        expect(found.KeyId, ref).to.equal(md.KeyId);
        expect(found.Arn, ref).to.equal(md.Arn);
        expect(found.Description, ref).to.equal('describe me');
      }
    });

    it('answers NotFoundException for an unknown, well-formed key id', async function () {
      const keyId = randomUUID();
      const err = await expectKmsError(describeKey(keyId));
      expect(err.name).to.equal('NotFoundException');
      expect(err.message).to.equal(`Key '${arnOf('us-east-1', keyId)}' does not exist`);
      expect(err.$metadata?.httpStatusCode).to.equal(400);
    });

    it('answers NotFoundException for an unknown, well-formed key ARN', async function () {
      const arn = arnOf('us-east-1', randomUUID());
      const err = await expectKmsError(describeKey(arn));
      expect(err.name).to.equal('NotFoundException');
      expect(err.message).to.equal(`Key '${arn}' does not exist`);
    });

    for (const bad of ['fake-key-id', '0123456789abcdef0123456789abcdef', 'mrk-fake-key-id']) {
      it(`answers NotFoundException "Invalid keyId" for the malformed id ${bad}`, async function () {
        const err = await expectKmsError(describeKey(bad));
        expect(err.name).to.equal('NotFoundException');
        expect(err.message).to.equal(`Invalid keyId '${bad}'`);
      });
    }

    it('does not find a key that exists only in another region (bare key id)', async function () {
      const md = await createKey('us-west-2');
      const err = await expectKmsError(describeKey(md.KeyId!, 'eu-west-1'));
      expect(err.name).to.equal('NotFoundException');
      expect(err.message).to.equal(`Key '${arnOf('eu-west-1', md.KeyId!)}' does not exist`);
    });

    it('rejects the key ARN of another region with "Invalid arn <region>"', async function () {
      const md = await createKey('us-west-2');
      const err = await expectKmsError(describeKey(md.Arn!, 'eu-west-1'));
      expect(err.name).to.equal('NotFoundException');
      expect(err.message).to.equal('Invalid arn us-west-2');
    });

    it('answers NotFoundException naming the alias ARN for an unknown alias', async function () {
      const alias = aliasName();
      const err = await expectKmsError(describeKey(alias));
      expect(err.name).to.equal('NotFoundException');
      expect(err.message).to.equal(`Alias arn:aws:kms:us-east-1:${ACCOUNT}:${alias} is not found.`);
    });
  });

  describe('ListKeys', function () {
    it('lists only the keys of the region the request is for', async function () {
      const region = freshRegion();
      const other = freshRegion();
      const a = await createKey(region);
      const b = await createKey(region);
      const elsewhere = await createKey(other);

      const keys = await listAllKeys(region);
      expect(keys).to.have.deep.members([
        { KeyId: a.KeyId, KeyArn: a.Arn },
        { KeyId: b.KeyId, KeyArn: b.Arn },
      ]);
      expect(keys.map((k) => k.KeyId)).to.not.include(elsewhere.KeyId);
      expect(await listAllKeys(other)).to.deep.equal([{ KeyId: elsewhere.KeyId, KeyArn: elsewhere.Arn }]);
    });

    it('lists nothing, untruncated, in a region without keys', async function () {
      const out = await kms(freshRegion()).send(new ListKeysCommand({}));
      expect(out.Keys).to.deep.equal([]);
      expect(out.Truncated).to.equal(false);
      expect(out.NextMarker).to.equal(undefined);
    });

    it('pages with Limit, Marker, Truncated and NextMarker, returning every key exactly once', async function () {
      const region = freshRegion();
      const created: KeyMetadata[] = [];
      for (let i = 0; i < 5; i++) created.push(await createKey(region));

      const pages: KeyListEntry[][] = [];
      const truncated: boolean[] = [];
      let marker: string | undefined;
      for (let guard = 0; guard < 10; guard++) {
        const out = await kms(region).send(new ListKeysCommand({ Limit: 2, Marker: marker }));
        pages.push(out.Keys ?? []);
        truncated.push(out.Truncated ?? false);
        if (!out.Truncated) {
          expect(out.NextMarker, 'no NextMarker on the last page').to.equal(undefined);
          break;
        }
        expect(out.NextMarker, 'NextMarker on a truncated page').to.be.a('string').and.not.equal('');
        marker = out.NextMarker;
      }
      expect(pages.map((p) => p.length)).to.deep.equal([2, 2, 1]);
      expect(truncated).to.deep.equal([true, true, false]);
      const ids = pages.flat().map((k) => k.KeyId);
      expect(ids).to.have.lengthOf(5);
      expect(new Set(ids).size).to.equal(5);
      expect(ids).to.have.members(created.map((k) => k.KeyId));
    });

    it('continues after a Marker whose key was deleted meanwhile: the next page is exactly the keys after it', async function () {
      // Its own server: deleting a key takes a restart a week later, when the sweeper removes it.
      let own = await TestServer.start();
      try {
        const region = 'us-east-1';
        let client = own.client({ region });
        for (let i = 0; i < 5; i++) await client.send(new CreateKeyCommand({}));
        const all = (await client.send(new ListKeysCommand({}))).Keys!.map((k) => k.KeyId!);
        expect(all).to.have.lengthOf(5);

        const page1 = await client.send(new ListKeysCommand({ Limit: 2 }));
        expect(page1.Keys!.map((k) => k.KeyId)).to.deep.equal(all.slice(0, 2));
        expect(page1.Truncated).to.equal(true);
        await client.send(new ScheduleKeyDeletionCommand({ KeyId: all[1], PendingWindowInDays: 7 }));
        client.destroy();
        own = await own.restart({ clockOffsetSeconds: 8 * DAY_MS / 1000 });
        client = own.client({ region, clockOffsetMs: 8 * DAY_MS });
        const gone = await expectKmsError(client.send(new DescribeKeyCommand({ KeyId: all[1] })));
        expect(gone.name, 'the key is deleted').to.equal('NotFoundException');

        const page2 = await client.send(new ListKeysCommand({ Limit: 2, Marker: page1.NextMarker }));
        expect(page2.Keys!.map((k) => k.KeyId)).to.deep.equal(all.slice(2, 4));
        expect(page2.Truncated).to.equal(true);
        const page3 = await client.send(new ListKeysCommand({ Limit: 2, Marker: page2.NextMarker }));
        expect(page3.Keys!.map((k) => k.KeyId)).to.deep.equal(all.slice(4));
        expect(page3.Truncated).to.equal(false);
        client.destroy();
      } finally {
        await own.stop();
      }
    });

    it('returns everything in one untruncated page when Limit covers all keys', async function () {
      const region = freshRegion();
      await createKey(region);
      await createKey(region);
      const out = await kms(region).send(new ListKeysCommand({ Limit: 2 }));
      expect(out.Keys).to.have.lengthOf(2);
      expect(out.Truncated).to.equal(false);
      expect(out.NextMarker).to.equal(undefined);
    });

    it('rejects a Marker it did not issue with InvalidMarkerException', async function () {
      // Garbage, a key id (what markers held before), and markers of another shape than a key's [creation time, key id].
      const shapes = ['["alias/x"]', '[1700000000000]', '["1700000000000","k"]', '{"createdAt":1}'].map((json) => Buffer.from(json).toString('base64url'));
      for (const marker of ['not-a-marker', 'garbage!!', Buffer.from(randomUUID()).toString('base64url'), ...shapes]) {
        const err = await expectKmsError(kms().send(new ListKeysCommand({ Marker: marker })));
        expect(err.name, marker).to.equal('InvalidMarkerException');
        expect(err.message, marker).to.be.a('string').and.not.equal('');
      }
    });

    it('rejects Limit 0 and 1001 with ValidationException', async function () {
      const low = await expectKmsError(kms().send(new ListKeysCommand({ Limit: 0 })));
      expect(low.name).to.equal('ValidationException');
      expect(low.message).to.equal(
        "1 validation error detected: Value '0' at 'limit' failed to satisfy constraint: Member must have value greater than or equal to 1",
      );
      const high = await expectKmsError(kms().send(new ListKeysCommand({ Limit: 1001 })));
      expect(high.name).to.equal('ValidationException');
      expect(high.message).to.equal(
        "1 validation error detected: Value '1001' at 'limit' failed to satisfy constraint: Member must have value less than or equal to 1000",
      );
    });
  });

  describe('EnableKey / DisableKey', function () {
    it('disables and re-enables a key; a disabled key cannot encrypt or decrypt', async function () {
      const md = await createKey();
      const { CiphertextBlob } = await kms().send(new EncryptCommand({ KeyId: md.KeyId, Plaintext: PLAINTEXT }));

      await kms().send(new DisableKeyCommand({ KeyId: md.KeyId }));
      const disabled = await describeKey(md.KeyId!);
      expect(disabled.KeyState).to.equal('Disabled');
      expect(disabled.Enabled).to.equal(false);

      const encErr = await expectKmsError(kms().send(new EncryptCommand({ KeyId: md.KeyId, Plaintext: PLAINTEXT })));
      expect(encErr.name).to.equal('DisabledException');
      expect(encErr.message).to.equal(`${md.Arn} is disabled.`);
      const decErr = await expectKmsError(kms().send(new DecryptCommand({ CiphertextBlob })));
      expect(decErr.name).to.equal('DisabledException');
      expect(decErr.message).to.equal(`${md.Arn} is disabled.`);

      await kms().send(new EnableKeyCommand({ KeyId: md.Arn }));
      const enabled = await describeKey(md.KeyId!);
      expect(enabled.KeyState).to.equal('Enabled');
      expect(enabled.Enabled).to.equal(true);
      const dec = await kms().send(new DecryptCommand({ CiphertextBlob }));
      expect(Buffer.from(dec.Plaintext!).equals(PLAINTEXT)).to.equal(true);
    });

    it('accepts DisableKey on a disabled key and EnableKey on an enabled key', async function () {
      const md = await createKey();
      await kms().send(new EnableKeyCommand({ KeyId: md.KeyId }));
      expect((await describeKey(md.KeyId!)).KeyState).to.equal('Enabled');
      await kms().send(new DisableKeyCommand({ KeyId: md.KeyId }));
      await kms().send(new DisableKeyCommand({ KeyId: md.KeyId }));
      expect((await describeKey(md.KeyId!)).KeyState).to.equal('Disabled');
    });

    it('answers NotFoundException for an unknown key', async function () {
      const keyId = randomUUID();
      const err = await expectKmsError(kms().send(new EnableKeyCommand({ KeyId: keyId })));
      expect(err.name).to.equal('NotFoundException');
      expect(err.message).to.equal(`Key '${arnOf('us-east-1', keyId)}' does not exist`);
    });
  });

  describe('operations that take only a key id or key ARN', function () {
    it('refuse an alias name (EnableKey, DisableKey, ScheduleKeyDeletion) and leave the key unchanged', async function () {
      const md = await createKey();
      const alias = aliasName();
      await kms().send(new CreateAliasCommand({ AliasName: alias, TargetKeyId: md.KeyId }));

      const attempts: Array<[string, () => Promise<unknown>]> = [
        ['DisableKey', () => kms().send(new DisableKeyCommand({ KeyId: alias }))],
        ['EnableKey', () => kms().send(new EnableKeyCommand({ KeyId: alias }))],
        ['ScheduleKeyDeletion', () => kms().send(new ScheduleKeyDeletionCommand({ KeyId: alias }))],
        ['ScheduleKeyDeletion (alias ARN)', () => kms().send(new ScheduleKeyDeletionCommand({ KeyId: `arn:aws:kms:us-east-1:${ACCOUNT}:${alias}` }))],
      ];
      for (const [label, attempt] of attempts) {
        const err = await expectKmsError(attempt());
        expect(err.name, label).to.equal('NotFoundException');
        expect(err.message, label).to.include(alias);
      }
      const after = await describeKey(md.KeyId!);
      expect(after.KeyState).to.equal('Enabled');
      expect(after.DeletionDate).to.equal(undefined);
    });
  });

  describe('UpdateKeyDescription', function () {
    it('replaces the description, also with an empty one', async function () {
      const md = await createKey('us-east-1', { Description: 'old' });
      await kms().send(new UpdateKeyDescriptionCommand({ KeyId: md.KeyId, Description: 'new description' }));
      expect((await describeKey(md.KeyId!)).Description).to.equal('new description');
      await kms().send(new UpdateKeyDescriptionCommand({ KeyId: md.Arn, Description: '' }));
      expect((await describeKey(md.KeyId!)).Description).to.equal('');
    });

    it('answers NotFoundException for an unknown key', async function () {
      const keyId = randomUUID();
      const err = await expectKmsError(kms().send(new UpdateKeyDescriptionCommand({ KeyId: keyId, Description: 'x' })));
      expect(err.name).to.equal('NotFoundException');
      expect(err.message).to.equal(`Key '${arnOf('us-east-1', keyId)}' does not exist`);
    });
  });

  describe('ScheduleKeyDeletion / CancelKeyDeletion', function () {
    it('schedules deletion in 30 days by default', async function () {
      const md = await createKey();
      const before = Date.now();
      const out = await kms().send(new ScheduleKeyDeletionCommand({ KeyId: md.KeyId }));
      const after = Date.now();
      expect(out.KeyId).to.equal(md.Arn);
      expect(out.KeyState).to.equal('PendingDeletion');
      expect(out.PendingWindowInDays).to.equal(30);
      expect(out.DeletionDate).to.be.instanceOf(Date);
      expect(out.DeletionDate!.getTime()).to.be.within(before + 30 * DAY_MS - 120_000, after + 30 * DAY_MS + 120_000);

      const described = await describeKey(md.KeyId!);
      expect(described.KeyState).to.equal('PendingDeletion');
      expect(described.Enabled).to.equal(false);
      expect(described.DeletionDate?.getTime()).to.equal(out.DeletionDate!.getTime());
    });

    it('accepts a 7-day window', async function () {
      const md = await createKey();
      const before = Date.now();
      const out = await kms().send(new ScheduleKeyDeletionCommand({ KeyId: md.Arn, PendingWindowInDays: 7 }));
      expect(out.PendingWindowInDays).to.equal(7);
      expect(out.DeletionDate!.getTime()).to.be.within(before + 7 * DAY_MS - 120_000, Date.now() + 7 * DAY_MS + 120_000);
    });

    for (const days of [6, 31]) {
      it(`rejects a ${days}-day window with ValidationException and leaves the key enabled`, async function () {
        const md = await createKey();
        const err = await expectKmsError(kms().send(new ScheduleKeyDeletionCommand({ KeyId: md.KeyId, PendingWindowInDays: days })));
        expect(err.name).to.equal('ValidationException');
        expect(err.message).to.include(String(days));
        const after = await describeKey(md.KeyId!);
        expect(after.KeyState).to.equal('Enabled');
        expect(after.DeletionDate).to.equal(undefined);
      });
    }

    it('refuses to schedule a key twice', async function () {
      const md = await createKey();
      const first = await kms().send(new ScheduleKeyDeletionCommand({ KeyId: md.KeyId }));
      const err = await expectKmsError(kms().send(new ScheduleKeyDeletionCommand({ KeyId: md.KeyId, PendingWindowInDays: 7 })));
      expect(err.name).to.equal('KMSInvalidStateException');
      expect(err.message).to.equal(`${md.Arn} is pending deletion.`);
      // The first schedule stands.
      expect((await describeKey(md.KeyId!)).DeletionDate?.getTime()).to.equal(first.DeletionDate!.getTime());
    });

    it('makes a key pending deletion unusable: Encrypt, Decrypt, EnableKey, DisableKey, UpdateKeyDescription fail', async function () {
      const md = await createKey();
      const { CiphertextBlob } = await kms().send(new EncryptCommand({ KeyId: md.KeyId, Plaintext: PLAINTEXT }));
      await kms().send(new ScheduleKeyDeletionCommand({ KeyId: md.KeyId, PendingWindowInDays: 7 }));

      const attempts: Array<[string, () => Promise<unknown>]> = [
        ['Encrypt', () => kms().send(new EncryptCommand({ KeyId: md.KeyId, Plaintext: PLAINTEXT }))],
        ['Decrypt', () => kms().send(new DecryptCommand({ CiphertextBlob }))],
        ['EnableKey', () => kms().send(new EnableKeyCommand({ KeyId: md.KeyId }))],
        ['DisableKey', () => kms().send(new DisableKeyCommand({ KeyId: md.KeyId }))],
        ['UpdateKeyDescription', () => kms().send(new UpdateKeyDescriptionCommand({ KeyId: md.KeyId, Description: 'x' }))],
      ];
      for (const [label, attempt] of attempts) {
        const err = await expectKmsError(attempt());
        expect(err.name, label).to.equal('KMSInvalidStateException');
        expect(err.message, label).to.include(md.Arn!);
        expect(err.message, label).to.include('pending deletion');
      }
      expect((await describeKey(md.KeyId!)).KeyState).to.equal('PendingDeletion');
    });

    it('cancels deletion: the key is Disabled without a DeletionDate, and can be enabled again', async function () {
      const md = await createKey();
      await kms().send(new ScheduleKeyDeletionCommand({ KeyId: md.KeyId }));
      const out = await kms().send(new CancelKeyDeletionCommand({ KeyId: md.KeyId }));
      expect(out.KeyId).to.equal(md.Arn);

      const cancelled = await describeKey(md.KeyId!);
      expect(cancelled.KeyState).to.equal('Disabled');
      expect(cancelled.Enabled).to.equal(false);
      expect(cancelled).to.not.have.property('DeletionDate');

      await kms().send(new EnableKeyCommand({ KeyId: md.KeyId }));
      const enc = await kms().send(new EncryptCommand({ KeyId: md.KeyId, Plaintext: PLAINTEXT }));
      expect(enc.KeyId).to.equal(md.Arn);
    });

    it('refuses CancelKeyDeletion on a key that is not pending deletion', async function () {
      const md = await createKey();
      const err = await expectKmsError(kms().send(new CancelKeyDeletionCommand({ KeyId: md.KeyId })));
      expect(err.name).to.equal('KMSInvalidStateException');
      expect(err.message).to.include(md.Arn!);
      expect((await describeKey(md.KeyId!)).KeyState).to.equal('Enabled');
    });

    it('schedules deletion of a disabled key', async function () {
      const md = await createKey();
      await kms().send(new DisableKeyCommand({ KeyId: md.KeyId }));
      const out = await kms().send(new ScheduleKeyDeletionCommand({ KeyId: md.KeyId, PendingWindowInDays: 30 }));
      expect(out.KeyState).to.equal('PendingDeletion');
      // Cancelling returns it to Disabled, as for any key.
      await kms().send(new CancelKeyDeletionCommand({ KeyId: md.Arn }));
      expect((await describeKey(md.KeyId!)).KeyState).to.equal('Disabled');
    });
  });

  describe('region isolation', function () {
    it('keys and aliases of us-west-2 are invisible through eu-west-1, and vice versa', async function () {
      const west = await createKey('us-west-2');
      const westAlias = aliasName();
      await kms('us-west-2').send(new CreateAliasCommand({ AliasName: westAlias, TargetKeyId: west.KeyId }));
      const eu = await createKey('eu-west-1');
      const euAlias = aliasName();
      await kms('eu-west-1').send(new CreateAliasCommand({ AliasName: euAlias, TargetKeyId: eu.KeyId }));

      const pairs: Array<[string, KeyMetadata, string, string]> = [
        ['us-west-2', west, westAlias, 'eu-west-1'],
        ['eu-west-1', eu, euAlias, 'us-west-2'],
      ];
      for (const [home, key, alias, away] of pairs) {
        // Visible at home.
        expect((await listAllKeys(home)).map((k) => k.KeyId)).to.include(key.KeyId);
        const homeAliases = (await kms(home).send(new ListAliasesCommand({}))).Aliases ?? [];
        expect(homeAliases.map((a) => a.AliasName)).to.include(alias);
        expect((await describeKey(alias, home)).KeyId).to.equal(key.KeyId);

        // Invisible away.
        const awayKeys = await listAllKeys(away);
        expect(awayKeys.map((k) => k.KeyId), `ListKeys in ${away}`).to.not.include(key.KeyId);
        for (const k of awayKeys) expect(k.KeyArn).to.match(new RegExp(`^arn:aws:kms:${away}:`));
        const awayAliases = (await kms(away).send(new ListAliasesCommand({}))).Aliases ?? [];
        expect(awayAliases.map((a) => a.AliasName), `ListAliases in ${away}`).to.not.include(alias);
        expect(awayAliases.map((a) => a.TargetKeyId)).to.not.include(key.KeyId);

        const byId = await expectKmsError(describeKey(key.KeyId!, away));
        expect(byId.name).to.equal('NotFoundException');
        expect(byId.message).to.equal(`Key '${arnOf(away, key.KeyId!)}' does not exist`);
        const byAlias = await expectKmsError(describeKey(alias, away));
        expect(byAlias.name).to.equal('NotFoundException');
        expect(byAlias.message).to.equal(`Alias arn:aws:kms:${away}:${ACCOUNT}:${alias} is not found.`);

        const encById = await expectKmsError(kms(away).send(new EncryptCommand({ KeyId: key.KeyId, Plaintext: PLAINTEXT })));
        expect(encById.name).to.equal('NotFoundException');
        const encByAlias = await expectKmsError(kms(away).send(new EncryptCommand({ KeyId: alias, Plaintext: PLAINTEXT })));
        expect(encByAlias.name).to.equal('NotFoundException');
        const encByArn = await expectKmsError(kms(away).send(new EncryptCommand({ KeyId: key.Arn, Plaintext: PLAINTEXT })));
        expect(encByArn.name).to.equal('NotFoundException');
        expect(encByArn.message).to.include(home);

        const disable = await expectKmsError(kms(away).send(new DisableKeyCommand({ KeyId: key.KeyId })));
        expect(disable.name).to.equal('NotFoundException');
        expect((await describeKey(key.KeyId!, home)).KeyState).to.equal('Enabled');
      }
    });

    it('a ciphertext made in us-west-2 does not decrypt through eu-west-1', async function () {
      const west = await createKey('us-west-2');
      const { CiphertextBlob } = await kms('us-west-2').send(new EncryptCommand({ KeyId: west.KeyId, Plaintext: PLAINTEXT }));

      const err = await expectKmsError(kms('eu-west-1').send(new DecryptCommand({ CiphertextBlob })));
      expect(err.name).to.equal('InvalidCiphertextException');

      const home = await kms('us-west-2').send(new DecryptCommand({ CiphertextBlob }));
      expect(home.KeyId).to.equal(west.Arn);
      expect(Buffer.from(home.Plaintext!).equals(PLAINTEXT)).to.equal(true);
    });
  });
});
