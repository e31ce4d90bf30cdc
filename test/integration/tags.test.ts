import {
  DecryptCommand,
  EncryptCommand,
  GenerateMacCommand,
  GetKeyLastUsageCommand,
  type KMSClient,
  ListResourceTagsCommand,
  paginateListResourceTags,
  ReEncryptCommand,
  ScheduleKeyDeletionCommand,
  TagResourceCommand,
  UntagResourceCommand,
} from '@aws-sdk/client-kms';
import { expect } from 'chai';
import { createdKey, expectKmsError, serverPerSuite } from '../support/server';

describe('tags and last usage (real server)', function () {
  let kms: KMSClient;
  const suite = serverPerSuite({ sweepIntervalSeconds: 1 }, (_server, client) => (kms = client));
  const newKey = (params: Record<string, unknown> = {}) => createdKey(kms, params);

  it('TagResource adds and overwrites, UntagResource removes (unknown keys ignored), ListResourceTags is sorted, paged and survives a restart', async () => {
    const { keyId, arn } = await newKey({ Tags: [{ TagKey: 'zeta', TagValue: '1' }] });
    await kms.send(new TagResourceCommand({ KeyId: arn, Tags: [{ TagKey: 'beta', TagValue: 'b' }, { TagKey: 'alpha', TagValue: '' }, { TagKey: 'zeta', TagValue: '2' }] }));
    const listed = await kms.send(new ListResourceTagsCommand({ KeyId: keyId }));
    expect(listed.Tags).to.deep.equal([
      { TagKey: 'alpha', TagValue: '' },
      { TagKey: 'beta', TagValue: 'b' },
      { TagKey: 'zeta', TagValue: '2' },
    ]);
    expect(listed.Truncated).to.equal(false);
    const page1 = await kms.send(new ListResourceTagsCommand({ KeyId: keyId, Limit: 2 }));
    expect(page1.Tags!.map((t) => t.TagKey)).to.deep.equal(['alpha', 'beta']);
    expect(page1.Truncated).to.equal(true);
    const page2 = await kms.send(new ListResourceTagsCommand({ KeyId: keyId, Limit: 2, Marker: page1.NextMarker }));
    expect(page2.Tags!.map((t) => t.TagKey)).to.deep.equal(['zeta']);
    await kms.send(new UntagResourceCommand({ KeyId: keyId, TagKeys: ['beta', 'not-there'] }));
    await suite.restart();
    expect((await kms.send(new ListResourceTagsCommand({ KeyId: keyId }))).Tags!.map((t) => t.TagKey)).to.deep.equal(['alpha', 'zeta']);
    await kms.send(new UntagResourceCommand({ KeyId: keyId, TagKeys: ['alpha', 'zeta'] }));
    expect((await kms.send(new ListResourceTagsCommand({ KeyId: keyId }))).Tags).to.deep.equal([]);
  });

  it('ListResourceTags continues after a Marker whose tag was removed meanwhile: the next page is exactly the tags after it', async () => {
    const keys = ['t0', 't1', 't2', 't3', 't4'];
    const { keyId } = await newKey({ Tags: keys.map((k) => ({ TagKey: k, TagValue: 'v' })) });
    const page1 = await kms.send(new ListResourceTagsCommand({ KeyId: keyId, Limit: 2 }));
    expect(page1.Tags!.map((t) => t.TagKey)).to.deep.equal(['t0', 't1']);
    expect(page1.Truncated).to.equal(true);
    await kms.send(new UntagResourceCommand({ KeyId: keyId, TagKeys: ['t1'] }));

    const page2 = await kms.send(new ListResourceTagsCommand({ KeyId: keyId, Limit: 2, Marker: page1.NextMarker }));
    expect(page2.Tags!.map((t) => t.TagKey)).to.deep.equal(['t2', 't3']);
    expect(page2.Truncated).to.equal(true);
    const page3 = await kms.send(new ListResourceTagsCommand({ KeyId: keyId, Limit: 2, Marker: page2.NextMarker }));
    expect(page3.Tags!.map((t) => t.TagKey)).to.deep.equal(['t4']);
    expect(page3.Truncated).to.equal(false);
  });

  it('ListResourceTags pages through tag keys of 128 control characters: every NextMarker fits the 1,024 characters Marker admits', async () => {
    const keys = [1, 2, 3].map((n) => String.fromCharCode(n).repeat(128));
    const { keyId } = await newKey({ Tags: keys.map((k) => ({ TagKey: k, TagValue: 'v' })) });
    const seen: string[] = [];
    for await (const page of paginateListResourceTags({ client: kms, pageSize: 1 }, { KeyId: keyId })) {
      if (page.NextMarker !== undefined) expect(page.NextMarker.length).to.be.at.most(1024);
      seen.push(...(page.Tags ?? []).map((t) => t.TagKey!));
    }
    expect(seen).to.deep.equal(keys);
  });

  it('ListResourceTags: the SDK paginator may remove every tag it is shown, page by page, until none is left', async () => {
    const keys = ['a', 'B', 'c', 'D', 'e', 'F', 'g'];
    const { keyId } = await newKey({ Tags: keys.map((k) => ({ TagKey: k, TagValue: 'v' })) });
    const seen: string[] = [];
    for await (const page of paginateListResourceTags({ client: kms, pageSize: 2 }, { KeyId: keyId })) {
      for (const tag of page.Tags ?? []) {
        seen.push(tag.TagKey!);
        await kms.send(new UntagResourceCommand({ KeyId: keyId, TagKeys: [tag.TagKey!] }));
      }
    }
    expect(seen).to.have.length(7);
    expect(seen).to.have.members(keys);
    expect((await kms.send(new ListResourceTagsCommand({ KeyId: keyId }))).Tags).to.deep.equal([]);
  });

  it('refuses with AWS names and messages: aws: prefix, duplicates, more than 50 in all, lengths, pending deletion, unknown key', async () => {
    const { keyId, arn } = await newKey();
    const tag = (k: string, v = 'v') => ({ TagKey: k, TagValue: v });
    const cases: Array<[unknown[], string, string]> = [
      [[tag('AWS:x')], 'TagException', 'Tags beginning with aws: are reserved'],
      [[tag('a'), tag('a')], 'TagException', 'Duplicate tag keys'],
      [Array.from({ length: 51 }, (_, i) => tag(`k${i}`)), 'TagException', 'Too many tags'],
    ];
    for (const [tags, name, message] of cases) {
      const err = await expectKmsError(kms.send(new TagResourceCommand({ KeyId: keyId, Tags: tags as never })));
      expect([err.name, err.message]).to.deep.equal([name, message]);
    }
    await kms.send(new TagResourceCommand({ KeyId: keyId, Tags: Array.from({ length: 50 }, (_, i) => tag(`k${i}`)) }));
    const over = await expectKmsError(kms.send(new TagResourceCommand({ KeyId: keyId, Tags: [tag('one-more')] })));
    expect([over.name, over.message]).to.deep.equal(['TagException', 'Too many tags']);
    await kms.send(new TagResourceCommand({ KeyId: keyId, Tags: [tag('k0', 'overwritten')] }));
    const longValue = 'v'.repeat(257);
    const value = await expectKmsError(kms.send(new TagResourceCommand({ KeyId: keyId, Tags: [tag('k', longValue)] })));
    expect(value.name).to.equal('ValidationException');
    expect(value.message).to.equal(`1 validation error detected: Value '${longValue}' at 'tags.1.member.tagValue' failed to satisfy constraint: Member must have length less than or equal to 256`);
    const key = await expectKmsError(kms.send(new TagResourceCommand({ KeyId: keyId, Tags: [tag('k'.repeat(129))] })));
    expect(key.name).to.equal('ValidationException');
    expect(key.message).to.contain("at 'tags.1.member.tagKey' failed to satisfy constraint: Member must have length less than or equal to 128");
    const reserved = await expectKmsError(kms.send(new UntagResourceCommand({ KeyId: keyId, TagKeys: ['aws:x'] })));
    expect(reserved.name).to.equal('TagException');
    await kms.send(new ScheduleKeyDeletionCommand({ KeyId: keyId, PendingWindowInDays: 7 }));
    const pending = await expectKmsError(kms.send(new TagResourceCommand({ KeyId: keyId, Tags: [tag('x')] })));
    expect([pending.name, pending.message]).to.deep.equal(['KMSInvalidStateException', `${arn} is pending deletion.`]);
    expect((await kms.send(new ListResourceTagsCommand({ KeyId: keyId }))).Tags!.length).to.equal(50);
    const unknown = '00000000-0000-4000-8000-000000000001';
    const missing = await expectKmsError(kms.send(new ListResourceTagsCommand({ KeyId: unknown })));
    expect([missing.name, missing.message]).to.deep.equal(['NotFoundException', `Key 'arn:aws:kms:us-east-1:111122223333:key/${unknown}' does not exist`]);
  });

  it('GetKeyLastUsage: empty for an unused key; then the last successful cryptographic use (ReEncrypt counts for both keys); failures do not count; persisted across a restart', async () => {
    const a = await newKey();
    const b = await newKey();
    const mac = await newKey({ KeySpec: 'HMAC_256', KeyUsage: 'GENERATE_VERIFY_MAC' });
    const fresh = await kms.send(new GetKeyLastUsageCommand({ KeyId: a.keyId }));
    expect(fresh.KeyLastUsage).to.equal(undefined);
    expect(fresh.TrackingStartDate!.getTime()).to.equal(fresh.KeyCreationDate!.getTime());
    const before = Date.now() - 1000;
    const { CiphertextBlob } = await kms.send(new EncryptCommand({ KeyId: a.keyId, Plaintext: Buffer.from('x') }));
    expect((await kms.send(new GetKeyLastUsageCommand({ KeyId: a.keyId }))).KeyLastUsage!.Operation).to.equal('Encrypt');
    await kms.send(new DecryptCommand({ CiphertextBlob }));
    const used = (await kms.send(new GetKeyLastUsageCommand({ KeyId: a.arn }))).KeyLastUsage!;
    expect(used.Operation).to.equal('Decrypt');
    expect(used.Timestamp!.getTime()).to.be.within(before, Date.now() + 1000);
    expect(used.KmsRequestId).to.be.a('string');
    await kms.send(new ReEncryptCommand({ CiphertextBlob, DestinationKeyId: b.keyId }));
    expect((await kms.send(new GetKeyLastUsageCommand({ KeyId: a.keyId }))).KeyLastUsage!.Operation).to.equal('ReEncrypt');
    expect((await kms.send(new GetKeyLastUsageCommand({ KeyId: b.keyId }))).KeyLastUsage!.Operation).to.equal('ReEncrypt');
    await kms.send(new GenerateMacCommand({ KeyId: mac.keyId, MacAlgorithm: 'HMAC_SHA_256', Message: Buffer.from('m') }));
    await expectKmsError(kms.send(new DecryptCommand({ CiphertextBlob, EncryptionContext: { wrong: 'context' } })));
    await expectKmsError(kms.send(new EncryptCommand({ KeyId: a.keyId, Plaintext: Buffer.from('x'), DryRun: true })));
    expect((await kms.send(new GetKeyLastUsageCommand({ KeyId: a.keyId }))).KeyLastUsage!.Operation).to.equal('ReEncrypt');
    await suite.restart();
    expect((await kms.send(new GetKeyLastUsageCommand({ KeyId: a.keyId }))).KeyLastUsage!.Operation).to.equal('ReEncrypt');
    expect((await kms.send(new GetKeyLastUsageCommand({ KeyId: mac.keyId }))).KeyLastUsage!.Operation).to.equal('GenerateMac');
  });
});
