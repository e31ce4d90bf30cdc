import {
  type AliasListEntry,
  CreateAliasCommand,
  CreateKeyCommand,
  DecryptCommand,
  DeleteAliasCommand,
  DescribeKeyCommand,
  DisableKeyCommand,
  EncryptCommand,
  GenerateDataKeyCommand,
  type KeyMetadata,
  KMSClient,
  ListAliasesCommand,
  ListKeysCommand,
  paginateListAliases,
  ScheduleKeyDeletionCommand,
  UpdateAliasCommand,
} from '@aws-sdk/client-kms';
import { randomUUID } from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { expect } from 'chai';
import { Credentials } from '../../src/access/credentials';
import { KmsError } from '../../src/errors';
import { OPERATIONS, type RequestContext, type Services } from '../../src/operations';
import { createAlias } from '../../src/operations/create-alias';
import { createKey } from '../../src/operations/create-key';
import { type InProcessService, openInProcessService } from '../support/in-process';
import { ADMINISTRATOR_POLICY, expectKmsError, TestServer } from '../support/server';

const ACCOUNT = '111122223333';
const REGION = 'us-east-1';
const PLAINTEXT = Buffer.from('alias test plaintext');
const PREFIX_MESSAGE =
  'Alias must start with the prefix "alias/". Please see https://docs.aws.amazon.com/kms/latest/developerguide/kms-alias.html';

/** Regions no other test in this file uses: a fresh region is an account without aliases. */
const FRESH_REGIONS = ['ap-south-1', 'ap-southeast-1', 'ap-southeast-2', 'ap-northeast-1', 'ca-central-1', 'sa-east-1', 'eu-north-1', 'af-south-1', 'eu-south-1', 'me-south-1'];
let freshRegionIndex = 0;
function freshRegion(): string {
  const region = FRESH_REGIONS[freshRegionIndex++];
  if (region === undefined) throw new Error('test file ran out of fresh regions');
  return region;
}

function uniqueAlias(label = 'a'): string {
  return `alias/${label}-${randomUUID()}`;
}

function aliasArnOf(region: string, aliasName: string): string {
  return `arn:aws:kms:${region}:${ACCOUNT}:${aliasName}`;
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

describe('aliases (CreateAlias, UpdateAlias, DeleteAlias, ListAliases)', function () {
  let server: TestServer;
  const clients = new Map<string, KMSClient>();

  function kms(region = REGION): KMSClient {
    let client = clients.get(region);
    if (!client) {
      client = server.client({ region });
      clients.set(region, client);
    }
    return client;
  }

  async function createKey(region = REGION): Promise<KeyMetadata> {
    const out = await kms(region).send(new CreateKeyCommand({}));
    return out.KeyMetadata!;
  }

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

  async function listAllAliases(region = REGION, keyId?: string): Promise<AliasListEntry[]> {
    const all: AliasListEntry[] = [];
    let marker: string | undefined;
    for (let page = 0; page < 100; page++) {
      const out = await kms(region).send(new ListAliasesCommand({ KeyId: keyId, Marker: marker }));
      all.push(...(out.Aliases ?? []));
      if (!out.Truncated) return all;
      marker = out.NextMarker;
    }
    throw new Error('ListAliases never stopped paging');
  }

  async function findAlias(name: string, region = REGION): Promise<AliasListEntry | undefined> {
    return (await listAllAliases(region)).find((a) => a.AliasName === name);
  }

  async function encryptVia(keyId: string, region = REGION) {
    return kms(region).send(new EncryptCommand({ KeyId: keyId, Plaintext: PLAINTEXT }));
  }

  before(async function () {
    server = await TestServer.start();
  });

  after(async function () {
    for (const client of clients.values()) client.destroy();
    await server?.stop();
  });

  describe('CreateAlias', function () {
    it('creates an alias that DescribeKey, Encrypt and GenerateDataKey resolve to its key', async function () {
      const key = await createKey();
      const alias = uniqueAlias();
      const out = await kms().send(new CreateAliasCommand({ AliasName: alias, TargetKeyId: key.KeyId }));
      expect(out.$metadata.httpStatusCode).to.equal(200);

      const described = await kms().send(new DescribeKeyCommand({ KeyId: alias }));
      expect(described.KeyMetadata?.KeyId).to.equal(key.KeyId);
      const enc = await encryptVia(alias);
      expect(enc.KeyId).to.equal(key.Arn);
      const dec = await kms().send(new DecryptCommand({ CiphertextBlob: enc.CiphertextBlob }));
      expect(dec.KeyId).to.equal(key.Arn);
      expect(Buffer.from(dec.Plaintext!).equals(PLAINTEXT)).to.equal(true);
      const gdk = await kms().send(new GenerateDataKeyCommand({ KeyId: aliasArnOf(REGION, alias), KeySpec: 'AES_256' }));
      expect(gdk.KeyId).to.equal(key.Arn);
    });

    it('accepts the target key given as a key ARN', async function () {
      const key = await createKey();
      const alias = uniqueAlias();
      await kms().send(new CreateAliasCommand({ AliasName: alias, TargetKeyId: key.Arn }));
      expect((await findAlias(alias))?.TargetKeyId).to.equal(key.KeyId);
      expect((await encryptVia(alias)).KeyId).to.equal(key.Arn);
    });

    it('lets one key have several aliases', async function () {
      const key = await createKey();
      const first = uniqueAlias('first');
      const second = uniqueAlias('second');
      await kms().send(new CreateAliasCommand({ AliasName: first, TargetKeyId: key.KeyId }));
      await kms().send(new CreateAliasCommand({ AliasName: second, TargetKeyId: key.KeyId }));
      const names = (await listAllAliases(REGION, key.KeyId)).map((a) => a.AliasName);
      expect(names).to.have.members([first, second]);
    });

    it('accepts a disabled key as target', async function () {
      const key = await createKey();
      await kms().send(new DisableKeyCommand({ KeyId: key.KeyId }));
      const alias = uniqueAlias();
      await kms().send(new CreateAliasCommand({ AliasName: alias, TargetKeyId: key.KeyId }));
      expect((await findAlias(alias))?.TargetKeyId).to.equal(key.KeyId);
      const err = await expectKmsError(encryptVia(alias));
      expect(err.name).to.equal('DisabledException');
      expect(err.message).to.equal(`${key.Arn} is disabled.`);
    });

    for (const name of ['my-key', 'aliases/my-key', 'Alias/my-key']) {
      it(`rejects the name ${name}, which lacks the alias/ prefix, with the AWS message`, async function () {
        const key = await createKey();
        const err = await expectKmsError(kms().send(new CreateAliasCommand({ AliasName: name, TargetKeyId: key.KeyId })));
        expect(err.name).to.equal('ValidationException');
        expect(err.message).to.equal(PREFIX_MESSAGE);
        expect(err.$metadata?.httpStatusCode).to.equal(400);
      });
    }

    it('reserves alias/aws/ for AWS managed keys (InvalidAliasNameException)', async function () {
      const key = await createKey();
      const name = `alias/aws/${randomUUID()}`;
      const err = await expectKmsError(kms().send(new CreateAliasCommand({ AliasName: name, TargetKeyId: key.KeyId })));
      expect(err.name).to.equal('InvalidAliasNameException');
      expect(err.message).to.be.a('string').and.not.equal('');
      expect(await findAlias(name)).to.equal(undefined);
    });

    it('rejects characters outside the model pattern with ValidationException', async function () {
      const key = await createKey();
      const name = 'alias/has space!';
      const err = await expectKmsError(kms().send(new CreateAliasCommand({ AliasName: name, TargetKeyId: key.KeyId })));
      expect(err.name).to.equal('ValidationException');
      expect(err.message).to.include(`'${name}'`);
      expect(err.message).to.include("'aliasName'");
    });

    it('refuses ":", which the model pattern admits and AWS does not, with AWS’s message', async function () {
      const key = await createKey();
      const name = `alias/team:${randomUUID()}`;
      for (const send of [
        () => kms().send(new CreateAliasCommand({ AliasName: name, TargetKeyId: key.KeyId })),
        () => kms().send(new UpdateAliasCommand({ AliasName: name, TargetKeyId: key.KeyId })),
      ]) {
        const err = await expectKmsError(send());
        expect(err.name).to.equal('ValidationException');
        expect(err.message).to.equal(`${name} contains invalid characters for an alias`);
      }
      expect(await findAlias(name)).to.equal(undefined);
    });

    it('refuses a duplicate name with AlreadyExistsException and keeps the first target', async function () {
      const first = await createKey();
      const second = await createKey();
      const alias = uniqueAlias();
      await kms().send(new CreateAliasCommand({ AliasName: alias, TargetKeyId: first.KeyId }));
      const err = await expectKmsError(kms().send(new CreateAliasCommand({ AliasName: alias, TargetKeyId: second.KeyId })));
      expect(err.name).to.equal('AlreadyExistsException');
      expect(err.message).to.include(alias);
      expect((await encryptVia(alias)).KeyId).to.equal(first.Arn);
    });

    it('refuses a target given as an alias or alias ARN (ValidationException: Aliases must refer to keys)', async function () {
      const key = await createKey();
      const existing = uniqueAlias('existing');
      await kms().send(new CreateAliasCommand({ AliasName: existing, TargetKeyId: key.KeyId }));
      const alias = uniqueAlias();
      for (const target of [existing, aliasArnOf(REGION, existing)]) {
        const err = await expectKmsError(kms().send(new CreateAliasCommand({ AliasName: alias, TargetKeyId: target })));
        expect(err.name, target).to.equal('ValidationException');
        expect(err.message, target).to.equal('Aliases must refer to keys. Not aliases');
      }
      expect(await findAlias(alias)).to.equal(undefined);
    });

    it('refuses an unknown target key (NotFoundException)', async function () {
      const keyId = randomUUID();
      const alias = uniqueAlias();
      const err = await expectKmsError(kms().send(new CreateAliasCommand({ AliasName: alias, TargetKeyId: keyId })));
      expect(err.name).to.equal('NotFoundException');
      expect(err.message).to.equal(`Key 'arn:aws:kms:${REGION}:${ACCOUNT}:key/${keyId}' does not exist`);
      expect(await findAlias(alias)).to.equal(undefined);
    });

    it('refuses a target key in another region (NotFoundException)', async function () {
      const key = await createKey('us-west-2');
      const alias = uniqueAlias();
      const err = await expectKmsError(kms('eu-west-1').send(new CreateAliasCommand({ AliasName: alias, TargetKeyId: key.KeyId })));
      expect(err.name).to.equal('NotFoundException');
      expect(err.message).to.include(key.KeyId!);
    });

    it('refuses a target key pending deletion (KMSInvalidStateException)', async function () {
      const key = await createKey();
      await kms().send(new ScheduleKeyDeletionCommand({ KeyId: key.KeyId, PendingWindowInDays: 7 }));
      const alias = uniqueAlias();
      const err = await expectKmsError(kms().send(new CreateAliasCommand({ AliasName: alias, TargetKeyId: key.KeyId })));
      expect(err.name).to.equal('KMSInvalidStateException');
      expect(err.message).to.equal(`${key.Arn} is pending deletion.`);
      expect(await findAlias(alias)).to.equal(undefined);
    });

    it('allows the same alias name in two regions, each pointing at its own key', async function () {
      const west = await createKey('us-west-2');
      const eu = await createKey('eu-west-1');
      const alias = uniqueAlias('shared');
      await kms('us-west-2').send(new CreateAliasCommand({ AliasName: alias, TargetKeyId: west.KeyId }));
      await kms('eu-west-1').send(new CreateAliasCommand({ AliasName: alias, TargetKeyId: eu.KeyId }));
      expect((await encryptVia(alias, 'us-west-2')).KeyId).to.equal(west.Arn);
      expect((await encryptVia(alias, 'eu-west-1')).KeyId).to.equal(eu.Arn);
      expect((await findAlias(alias, 'us-west-2'))?.AliasArn).to.equal(aliasArnOf('us-west-2', alias));
      expect((await findAlias(alias, 'eu-west-1'))?.AliasArn).to.equal(aliasArnOf('eu-west-1', alias));
    });
  });

  describe('UpdateAlias', function () {
    it('retargets the alias: Encrypt through it then uses the new key', async function () {
      const oldKey = await createKey();
      const newKey = await createKey();
      const alias = uniqueAlias();
      await kms().send(new CreateAliasCommand({ AliasName: alias, TargetKeyId: oldKey.KeyId }));
      const before = await encryptVia(alias);
      expect(before.KeyId).to.equal(oldKey.Arn);

      await kms().send(new UpdateAliasCommand({ AliasName: alias, TargetKeyId: newKey.KeyId }));

      const after = await encryptVia(alias);
      expect(after.KeyId).to.equal(newKey.Arn);
      expect((await kms().send(new DescribeKeyCommand({ KeyId: alias }))).KeyMetadata?.KeyId).to.equal(newKey.KeyId);
      expect((await findAlias(alias))?.TargetKeyId).to.equal(newKey.KeyId);
      // A ciphertext made through the alias before still decrypts, under the old key.
      const dec = await kms().send(new DecryptCommand({ CiphertextBlob: before.CiphertextBlob }));
      expect(dec.KeyId).to.equal(oldKey.Arn);
      // Decrypt naming the alias (now the new key) refuses the old ciphertext.
      const err = await expectKmsError(kms().send(new DecryptCommand({ CiphertextBlob: before.CiphertextBlob, KeyId: alias })));
      expect(err.name).to.equal('IncorrectKeyException');
    });

    it('accepts the new target given as a key ARN', async function () {
      const oldKey = await createKey();
      const newKey = await createKey();
      const alias = uniqueAlias();
      await kms().send(new CreateAliasCommand({ AliasName: alias, TargetKeyId: oldKey.KeyId }));
      await kms().send(new UpdateAliasCommand({ AliasName: alias, TargetKeyId: newKey.Arn }));
      expect((await encryptVia(alias)).KeyId).to.equal(newKey.Arn);
    });

    it('answers NotFoundException for an unknown alias and creates nothing', async function () {
      const key = await createKey();
      const alias = uniqueAlias();
      const err = await expectKmsError(kms().send(new UpdateAliasCommand({ AliasName: alias, TargetKeyId: key.KeyId })));
      expect(err.name).to.equal('NotFoundException');
      expect(err.message).to.equal(`Alias ${aliasArnOf(REGION, alias)} is not found.`);
      expect(await findAlias(alias)).to.equal(undefined);
    });

    it('refuses a new target given as an alias (ValidationException) and keeps the old target', async function () {
      const oldKey = await createKey();
      const otherKey = await createKey();
      const alias = uniqueAlias();
      const other = uniqueAlias('other');
      await kms().send(new CreateAliasCommand({ AliasName: alias, TargetKeyId: oldKey.KeyId }));
      await kms().send(new CreateAliasCommand({ AliasName: other, TargetKeyId: otherKey.KeyId }));
      const err = await expectKmsError(kms().send(new UpdateAliasCommand({ AliasName: alias, TargetKeyId: other })));
      expect(err.name).to.equal('ValidationException');
      expect(err.message).to.equal('Aliases must refer to keys. Not aliases');
      expect((await encryptVia(alias)).KeyId).to.equal(oldKey.Arn);
    });

    it('refuses a new target pending deletion (KMSInvalidStateException) and keeps the old target', async function () {
      const oldKey = await createKey();
      const doomed = await createKey();
      await kms().send(new ScheduleKeyDeletionCommand({ KeyId: doomed.KeyId }));
      const alias = uniqueAlias();
      await kms().send(new CreateAliasCommand({ AliasName: alias, TargetKeyId: oldKey.KeyId }));
      const err = await expectKmsError(kms().send(new UpdateAliasCommand({ AliasName: alias, TargetKeyId: doomed.KeyId })));
      expect(err.name).to.equal('KMSInvalidStateException');
      expect(err.message).to.equal(`${doomed.Arn} is pending deletion.`);
      expect((await encryptVia(alias)).KeyId).to.equal(oldKey.Arn);
    });

    it('rejects an alias name without the alias/ prefix with the AWS message', async function () {
      const key = await createKey();
      const err = await expectKmsError(kms().send(new UpdateAliasCommand({ AliasName: 'no-prefix', TargetKeyId: key.KeyId })));
      expect(err.name).to.equal('ValidationException');
      expect(err.message).to.equal(PREFIX_MESSAGE);
    });
  });

  describe('DeleteAlias', function () {
    it('deletes the alias; using it afterwards is NotFoundException naming the alias ARN; the key lives on', async function () {
      const key = await createKey();
      const alias = uniqueAlias();
      await kms().send(new CreateAliasCommand({ AliasName: alias, TargetKeyId: key.KeyId }));
      await kms().send(new DeleteAliasCommand({ AliasName: alias }));

      const notFound = `Alias arn:aws:kms:${REGION}:${ACCOUNT}:${alias} is not found.`;
      const enc = await expectKmsError(encryptVia(alias));
      expect(enc.name).to.equal('NotFoundException');
      expect(enc.message).to.equal(notFound);
      const desc = await expectKmsError(kms().send(new DescribeKeyCommand({ KeyId: alias })));
      expect(desc.name).to.equal('NotFoundException');
      expect(desc.message).to.equal(notFound);
      expect(await findAlias(alias)).to.equal(undefined);

      const described = await kms().send(new DescribeKeyCommand({ KeyId: key.KeyId }));
      expect(described.KeyMetadata?.KeyState).to.equal('Enabled');
    });

    it('frees the name for a new alias', async function () {
      const first = await createKey();
      const second = await createKey();
      const alias = uniqueAlias();
      await kms().send(new CreateAliasCommand({ AliasName: alias, TargetKeyId: first.KeyId }));
      await kms().send(new DeleteAliasCommand({ AliasName: alias }));
      await kms().send(new CreateAliasCommand({ AliasName: alias, TargetKeyId: second.KeyId }));
      expect((await encryptVia(alias)).KeyId).to.equal(second.Arn);
    });

    it('answers NotFoundException for an alias that does not exist', async function () {
      const alias = uniqueAlias();
      const err = await expectKmsError(kms().send(new DeleteAliasCommand({ AliasName: alias })));
      expect(err.name).to.equal('NotFoundException');
      expect(err.message).to.equal(`Alias ${aliasArnOf(REGION, alias)} is not found.`);
    });

    it('does not delete the alias of the same name in another region', async function () {
      const west = await createKey('us-west-2');
      const eu = await createKey('eu-west-1');
      const alias = uniqueAlias('regional');
      await kms('us-west-2').send(new CreateAliasCommand({ AliasName: alias, TargetKeyId: west.KeyId }));
      await kms('eu-west-1').send(new CreateAliasCommand({ AliasName: alias, TargetKeyId: eu.KeyId }));
      await kms('eu-west-1').send(new DeleteAliasCommand({ AliasName: alias }));
      expect((await encryptVia(alias, 'us-west-2')).KeyId).to.equal(west.Arn);
      expect((await expectKmsError(encryptVia(alias, 'eu-west-1'))).name).to.equal('NotFoundException');
    });

    it('rejects an alias name without the alias/ prefix with the AWS message', async function () {
      const err = await expectKmsError(kms().send(new DeleteAliasCommand({ AliasName: 'no-prefix' })));
      expect(err.name).to.equal('ValidationException');
      expect(err.message).to.equal(PREFIX_MESSAGE);
    });
  });

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
      await sleep(50);
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

describe('UpdateAlias and DeleteAlias are authorised against the key they change (in process, strict mode)', function () {
  const ACCOUNT = '111122223333';
  const DAVE = { accountId: ACCOUNT, principalArn: `arn:aws:iam::${ACCOUNT}:user/dave`, accessKeyId: 'AKIADAVE00000000001' };
  const ADMIN = { accountId: ACCOUNT, principalArn: `arn:aws:iam::${ACCOUNT}:user/admin`, accessKeyId: 'AKIAADMIN0000000001' };
  let harness: InProcessService;
  let services: Services;
  let root: RequestContext;
  let dave: RequestContext;
  // As the wire calls them.
  const deleteAlias = OPERATIONS.DeleteAlias!;
  const updateAlias = OPERATIONS.UpdateAlias!;

  before(async () => {
    harness = await openInProcessService('alias-authorisation', Date.now());
    ({ services, ctx: root } = harness);
    const file = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'p11kms-alias-access-')), 'credentials.json');
    const everyAliasAction = { Version: '2012-10-17', Statement: [{ Effect: 'Allow', Action: ['kms:UpdateAlias', 'kms:DeleteAlias'], Resource: '*' }] };
    fs.writeFileSync(file, JSON.stringify({ accessKeys: [{ ...DAVE, secretAccessKey: 'dave-secret' }, { ...ADMIN, secretAccessKey: 'admin-secret' }], identityPolicies: { [DAVE.principalArn]: everyAliasAction, [ADMIN.principalArn]: ADMINISTRATOR_POLICY } }));
    services.access = { enforce: true, directory: Credentials.load(file).directory() };
    dave = { ...root, caller: DAVE };
  });
  after(async () => harness?.close());

  /** A key whose policy names dave (his key) or only an administrator (not his). */
  async function keyFor(daveAllowed: boolean): Promise<string> {
    const admin = { Effect: 'Allow', Principal: { AWS: ADMIN.principalArn }, Action: 'kms:*', Resource: '*' };
    const his = { Effect: 'Allow', Principal: { AWS: DAVE.principalArn }, Action: ['kms:UpdateAlias', 'kms:DeleteAlias'], Resource: '*' };
    const Policy = JSON.stringify({ Version: '2012-10-17', Statement: daveAllowed ? [admin, his] : [admin] });
    return (await createKey({ Policy, BypassPolicyLockoutSafetyCheck: true }, root, services)).KeyMetadata!.KeyId;
  }

  /** Runs `request` with another request's UpdateAlias to `movedTo` committing just before its first transaction, after its authorisation. */
  async function withAliasMovedUnderIt(aliasName: string, movedTo: string, request: () => Promise<unknown>): Promise<unknown> {
    const store = services.store;
    const transact = store.transact.bind(store);
    store.transact = (async (body: Parameters<typeof transact>[0]) => {
      store.transact = transact;
      await transact(async (tx) => tx.putAlias({ ...(await tx.getAlias(root.scope, aliasName))!, targetKeyId: movedTo }));
      return transact(body);
    }) as typeof store.transact;
    try {
      return await request().then(
        () => 'succeeded',
        (err: KmsError) => err,
      );
    } finally {
      store.transact = transact;
    }
  }

  const refusedOnB: Array<[string, (aliasName: string, c: string) => Promise<unknown>]> = [
    ['DeleteAlias by a caller allowed on key A', (aliasName) => deleteAlias({ AliasName: aliasName }, dave, services)],
    ['UpdateAlias (to key C) by a caller allowed on keys A and C', (aliasName, c) => updateAlias({ AliasName: aliasName, TargetKeyId: c }, dave, services)],
  ];
  for (const [what, request] of refusedOnB) {
    it(`${what}, while the alias is moved to key B: AccessDeniedException, the alias stays on B`, async () => {
      const [a, b, c] = [await keyFor(true), await keyFor(false), await keyFor(true)];
      const aliasName = `alias/moved-${randomUUID()}`;
      await createAlias({ AliasName: aliasName, TargetKeyId: a }, { ...root, caller: ADMIN }, services);
      const outcome = await withAliasMovedUnderIt(aliasName, b, () => request(aliasName, c));
      expect(outcome).to.be.instanceOf(KmsError);
      expect((outcome as KmsError).name).to.equal('AccessDeniedException');
      expect((await services.store.getAlias(root.scope, aliasName))?.targetKeyId).to.equal(b);
    });
  }

  it('the same moves between two keys the caller may change: the request is served against the new target', async () => {
    const [a, a2, c] = [await keyFor(true), await keyFor(true), await keyFor(true)];
    const aliasName = `alias/moved-${randomUUID()}`;
    await createAlias({ AliasName: aliasName, TargetKeyId: a }, { ...root, caller: ADMIN }, services);
    expect(await withAliasMovedUnderIt(aliasName, a2, () => updateAlias({ AliasName: aliasName, TargetKeyId: c }, dave, services))).to.equal('succeeded');
    expect((await services.store.getAlias(root.scope, aliasName))?.targetKeyId).to.equal(c);
    expect(await withAliasMovedUnderIt(aliasName, a, () => deleteAlias({ AliasName: aliasName }, dave, services))).to.equal('succeeded');
    expect(await services.store.getAlias(root.scope, aliasName)).to.equal(undefined);
  });
});
