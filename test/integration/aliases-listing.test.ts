/**
 * ListAliases through the SDK against a real server: the entries' members, the KeyId filter,
 * and paging (markers, limits, deletions between pages, the SDK paginator).
 */
import { randomUUID } from 'node:crypto';
import { CreateAliasCommand, CreateKeyCommand, DeleteAliasCommand, ListAliasesCommand, ListKeysCommand, paginateListAliases, UpdateAliasCommand } from '@aws-sdk/client-kms';
import { expect } from 'chai';
import { aliasArnOf, aliasSuite, uniqueAlias } from '../support/alias-suite';
import { freshRegions } from '../support/regional-clients';
import { expectKmsError } from '../support/server';

describe('aliases (ListAliases)', function () {
  const { kms, createKey, listAllAliases, findAlias } = aliasSuite();
  const freshRegion = freshRegions();

  /** A region of its own holding one key and `count` aliases of it (named `<label><i>-…`), for paging. */
  async function regionWithAliases(label: string, count: number): Promise<{ region: string; names: string[] }> {
    const region = freshRegion();
    const key = await createKey(region);
    const names: string[] = [];
    for (let i = 0; i < count; i++) {
      const name = uniqueAlias(`${label}${i}`);
      names.push(name);
      await kms(region).send(new CreateAliasCommand({ AliasName: name, TargetKeyId: key.KeyId }));
    }
    return { region, names };
  }

  describe('ListAliases', function () {
    it('lists no aliases at all in a region where none were created (no invented AWS managed aliases)', async function () {
      const out = await kms(freshRegion()).send(new ListAliasesCommand({}));
      expect(out.Aliases).to.deep.equal([]);
      expect(out.Truncated).to.equal(false);
      expect(out.NextMarker).to.equal(undefined);
    });

    it('reports AliasName, AliasArn, TargetKeyId, CreationDate and LastUpdatedDate', async function () {
      const region = freshRegion();
      const key = await createKey(region);
      const alias = uniqueAlias();
      const before = Date.now();
      await kms(region).send(new CreateAliasCommand({ AliasName: alias, TargetKeyId: key.Arn }));
      const after = Date.now();

      const out = await kms(region).send(new ListAliasesCommand({}));
      expect(out.Aliases).to.have.lengthOf(1);
      const entry = out.Aliases![0]!;
      expect(Object.keys(entry).sort()).to.deep.equal(['AliasArn', 'AliasName', 'CreationDate', 'LastUpdatedDate', 'TargetKeyId']);
      expect(entry.AliasName).to.equal(alias);
      expect(entry.AliasArn).to.equal(aliasArnOf(region, alias));
      // TargetKeyId is the bare key id, also when the alias was created with the key ARN.
      expect(entry.TargetKeyId).to.equal(key.KeyId);
      expect(entry.CreationDate).to.be.instanceOf(Date);
      expect(entry.CreationDate!.getTime()).to.be.within(before - 2000, after + 2000);
      expect(entry.LastUpdatedDate).to.be.instanceOf(Date);
      expect(entry.LastUpdatedDate!.getTime()).to.be.at.least(entry.CreationDate!.getTime());
    });

    it('changes LastUpdatedDate, not CreationDate, on UpdateAlias', async function () {
      const first = await createKey();
      const second = await createKey();
      const alias = uniqueAlias();
      await kms().send(new CreateAliasCommand({ AliasName: alias, TargetKeyId: first.KeyId }));
      const created = (await findAlias(alias))!;
      // The update must land in a later millisecond than the creation: wait for the clock to
      // pass it (the event the comparison needs), not for a guessed time.
      while (Date.now() <= created.LastUpdatedDate!.getTime()) await new Promise((resolve) => setTimeout(resolve, 1));
      await kms().send(new UpdateAliasCommand({ AliasName: alias, TargetKeyId: second.KeyId }));
      const updated = (await findAlias(alias))!;
      expect(updated.TargetKeyId).to.equal(second.KeyId);
      expect(updated.CreationDate!.getTime()).to.equal(created.CreationDate!.getTime());
      expect(updated.LastUpdatedDate!.getTime()).to.be.greaterThan(created.LastUpdatedDate!.getTime());
    });

    it('filters by KeyId (key id or key ARN)', async function () {
      const region = freshRegion();
      const a = await createKey(region);
      const b = await createKey(region);
      const a1 = uniqueAlias('a1');
      const a2 = uniqueAlias('a2');
      const b1 = uniqueAlias('b1');
      await kms(region).send(new CreateAliasCommand({ AliasName: a1, TargetKeyId: a.KeyId }));
      await kms(region).send(new CreateAliasCommand({ AliasName: a2, TargetKeyId: a.KeyId }));
      await kms(region).send(new CreateAliasCommand({ AliasName: b1, TargetKeyId: b.KeyId }));

      expect((await listAllAliases(region, a.KeyId)).map((x) => x.AliasName)).to.have.members([a1, a2]);
      expect((await listAllAliases(region, a.Arn)).map((x) => x.AliasName)).to.have.members([a1, a2]);
      expect((await listAllAliases(region, b.KeyId)).map((x) => x.AliasName)).to.deep.equal([b1]);
      const none = await createKey(region);
      expect(await listAllAliases(region, none.KeyId)).to.deep.equal([]);
      expect((await listAllAliases(region)).map((x) => x.AliasName)).to.have.members([a1, a2, b1]);
    });

    it('refuses an alias name as KeyId filter (NotFoundException): it takes a key id or key ARN only', async function () {
      const key = await createKey();
      const alias = uniqueAlias();
      await kms().send(new CreateAliasCommand({ AliasName: alias, TargetKeyId: key.KeyId }));
      const err = await expectKmsError(kms().send(new ListAliasesCommand({ KeyId: alias })));
      expect(err.name).to.equal('NotFoundException');
      expect(err.message).to.include(alias);
    });

    it('answers NotFoundException for a KeyId filter naming an unknown key', async function () {
      const keyId = randomUUID();
      const err = await expectKmsError(kms().send(new ListAliasesCommand({ KeyId: keyId })));
      expect(err.name).to.equal('NotFoundException');
      expect(err.message).to.include(keyId);
    });

    it('pages with Limit and Marker, returning every alias exactly once', async function () {
      const { region, names } = await regionWithAliases('page', 5);

      const sizes: number[] = [];
      const truncated: boolean[] = [];
      const seen: string[] = [];
      let marker: string | undefined;
      for (let guard = 0; guard < 10; guard++) {
        const out = await kms(region).send(new ListAliasesCommand({ Limit: 2, Marker: marker }));
        sizes.push(out.Aliases?.length ?? 0);
        truncated.push(out.Truncated ?? false);
        seen.push(...(out.Aliases ?? []).map((a) => a.AliasName!));
        if (!out.Truncated) {
          expect(out.NextMarker).to.equal(undefined);
          break;
        }
        expect(out.NextMarker).to.be.a('string').and.not.equal('');
        marker = out.NextMarker;
      }
      expect(sizes).to.deep.equal([2, 2, 1]);
      expect(truncated).to.deep.equal([true, true, false]);
      expect(seen).to.have.lengthOf(5);
      expect(new Set(seen).size).to.equal(5);
      expect(seen).to.have.members(names);
    });

    it('continues after a Marker whose alias was deleted meanwhile: the next page is exactly the aliases after it', async function () {
      const { region } = await regionWithAliases('gone', 5);
      const all = (await listAllAliases(region)).map((a) => a.AliasName!);
      expect(all).to.have.lengthOf(5);

      const page1 = await kms(region).send(new ListAliasesCommand({ Limit: 2 }));
      expect(page1.Aliases!.map((a) => a.AliasName)).to.deep.equal(all.slice(0, 2));
      expect(page1.Truncated).to.equal(true);
      await kms(region).send(new DeleteAliasCommand({ AliasName: all[1] }));

      const page2 = await kms(region).send(new ListAliasesCommand({ Limit: 2, Marker: page1.NextMarker }));
      expect(page2.Aliases!.map((a) => a.AliasName)).to.deep.equal(all.slice(2, 4));
      expect(page2.Truncated).to.equal(true);
      const page3 = await kms(region).send(new ListAliasesCommand({ Limit: 2, Marker: page2.NextMarker }));
      expect(page3.Aliases!.map((a) => a.AliasName)).to.deep.equal(all.slice(4));
      expect(page3.Truncated).to.equal(false);
    });

    it('lets the SDK paginator delete every alias it is shown, page by page, until none is left', async function () {
      const { region, names } = await regionWithAliases('sweep', 7);

      const seen: string[] = [];
      for await (const page of paginateListAliases({ client: kms(region), pageSize: 2 }, {})) {
        for (const alias of page.Aliases ?? []) {
          seen.push(alias.AliasName!);
          await kms(region).send(new DeleteAliasCommand({ AliasName: alias.AliasName }));
        }
      }
      expect(seen).to.have.lengthOf(7);
      expect(seen).to.have.members(names);
      expect(await listAllAliases(region)).to.deep.equal([]);
    });

    it('pages 50 aliases without Limit and at most 100 for a larger Limit, as AWS', async function () {
      const { region } = await regionWithAliases('size', 120);

      const byDefault = await kms(region).send(new ListAliasesCommand({}));
      expect(byDefault.Aliases).to.have.lengthOf(50);
      expect(byDefault.Truncated).to.equal(true);
      const capped = await kms(region).send(new ListAliasesCommand({ Limit: 500 }));
      expect(capped.Aliases).to.have.lengthOf(100);
      expect(capped.Truncated).to.equal(true);
      const rest = await kms(region).send(new ListAliasesCommand({ Limit: 500, Marker: capped.NextMarker }));
      expect(rest.Aliases).to.have.lengthOf(20);
      expect(rest.Truncated).to.equal(false);
      expect(new Set([...capped.Aliases!, ...rest.Aliases!].map((a) => a.AliasName)).size).to.equal(120);
    });

    it('rejects a Marker it did not issue with InvalidMarkerException', async function () {
      // ListKeys' marker, garbage, and markers of another shape than an alias name's (a ListKeys-like one, a number).
      await kms().send(new CreateKeyCommand({}));
      await kms().send(new CreateKeyCommand({}));
      const keysMarker = (await kms().send(new ListKeysCommand({ Limit: 1 }))).NextMarker!;
      for (const marker of [keysMarker, 'bogus-marker', 'garbage!!', Buffer.from('[1700000000000,"k"]').toString('base64url'), Buffer.from('[1]').toString('base64url')]) {
        const err = await expectKmsError(kms().send(new ListAliasesCommand({ Marker: marker })));
        expect(err.name, marker).to.equal('InvalidMarkerException');
        expect(err.message, marker).to.equal('The marker is not valid for this request.');
      }
    });

    it('rejects Limit 0 and 1001 with ValidationException', async function () {
      for (const limit of [0, 1001]) {
        const err = await expectKmsError(kms().send(new ListAliasesCommand({ Limit: limit })));
        expect(err.name, String(limit)).to.equal('ValidationException');
        expect(err.message, String(limit)).to.include(`Value '${limit}' at 'limit'`);
      }
    });
  });
});
