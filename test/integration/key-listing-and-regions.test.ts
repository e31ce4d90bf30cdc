/**
 * ListKeys (paging, markers, limits) and region isolation: a key or alias of one region is
 * invisible and unusable through another.
 */
import { randomUUID } from 'node:crypto';
import {
  CreateAliasCommand,
  CreateKeyCommand,
  DecryptCommand,
  DescribeKeyCommand,
  DisableKeyCommand,
  EncryptCommand,
  type KeyListEntry,
  type KeyMetadata,
  ListAliasesCommand,
  ListKeysCommand,
  ScheduleKeyDeletionCommand,
} from '@aws-sdk/client-kms';
import { expect } from 'chai';
import { aliasName, arnOf, DAY_MS, keyManagementSuite, PLAINTEXT } from '../support/key-management-suite';
import { ACCOUNT, freshRegions } from '../support/regional-clients';
import { expectKmsError, TestServer } from '../support/server';

describe('key listing and regions (ListKeys, region isolation)', function () {
  const { kms, createKey, describeKey, listAllKeys } = keyManagementSuite();
  const freshRegion = freshRegions();

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
