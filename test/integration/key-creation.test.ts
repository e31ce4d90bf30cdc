/**
 * CreateKey, DescribeKey and UpdateKeyDescription: what a key is made with and how it is
 * described. Listing keys and region isolation: key-listing-and-regions.test.ts; enabling,
 * disabling and scheduling deletion: key-state-changes.test.ts.
 */
import { randomUUID } from 'node:crypto';
import { CreateAliasCommand, type CreateKeyCommandInput, CreateKeyCommand, type Tag, UpdateKeyDescriptionCommand } from '@aws-sdk/client-kms';
import { expect } from 'chai';
import { aliasName, arnOf, keyManagementSuite } from '../support/key-management-suite';
import { ACCOUNT, freshRegions } from '../support/regional-clients';
import { expectKmsError } from '../support/server';

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

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

describe('key creation (CreateKey, DescribeKey, UpdateKeyDescription)', function () {
  const { kms, createKey, describeKey, listAllKeys } = keyManagementSuite();

  /** CreateKey with a value outside `member`'s enum: AWS's ValidationException, and the values its message lists. */
  const enumRefusal = async (input: Record<string, string>, value: string, member: string): Promise<string[]> => {
    const err = await expectKmsError(kms().send(new CreateKeyCommand(input as unknown as CreateKeyCommandInput)));
    expect(err.name).to.equal('ValidationException');
    const prefix = `1 validation error detected: Value '${value}' at '${member}' failed to satisfy constraint: Member must satisfy enum value set: [`;
    expect(err.message.startsWith(prefix), err.message).to.equal(true);
    expect(err.message.endsWith(']'), err.message).to.equal(true);
    return err.message.slice(prefix.length, -1).split(', ');
  };
  const freshRegion = freshRegions();

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
      const listed = await enumRefusal({ KeySpec: 'HMAC_random' }, 'HMAC_random', 'keySpec');
      // The set is unordered on AWS; every recorded spec must be in it.
      expect(listed).to.include.members([
        'RSA_2048', 'ECC_NIST_P384', 'ECC_NIST_P256', 'ECC_NIST_P521', 'HMAC_384', 'RSA_3072',
        'ECC_SECG_P256K1', 'RSA_4096', 'SYMMETRIC_DEFAULT', 'HMAC_256', 'HMAC_224', 'HMAC_512',
      ]);
    });

    it('rejects a KeyUsage outside the enum with the AWS validation message', async function () {
      const listed = await enumRefusal({ KeyUsage: 'RANDOM' }, 'RANDOM', 'keyUsage');
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
});
