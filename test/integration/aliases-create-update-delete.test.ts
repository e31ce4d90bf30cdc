/**
 * CreateAlias, UpdateAlias and DeleteAlias through the SDK against a real server: names,
 * targets, key states and regions. ListAliases: aliases-listing.test.ts; authorisation of
 * UpdateAlias and DeleteAlias in strict mode: aliases-authorisation.test.ts.
 */
import { randomUUID } from 'node:crypto';
import {
  CreateAliasCommand,
  DecryptCommand,
  DeleteAliasCommand,
  DescribeKeyCommand,
  DisableKeyCommand,
  GenerateDataKeyCommand,
  ScheduleKeyDeletionCommand,
  UpdateAliasCommand,
} from '@aws-sdk/client-kms';
import { expect } from 'chai';
import { aliasArnOf, aliasSuite, PLAINTEXT, REGION, uniqueAlias } from '../support/alias-suite';
import { ACCOUNT } from '../support/regional-clients';
import { expectKmsError } from '../support/server';

const PREFIX_MESSAGE =
  'Alias must start with the prefix "alias/". Please see https://docs.aws.amazon.com/kms/latest/developerguide/kms-alias.html';

describe('aliases (CreateAlias, UpdateAlias, DeleteAlias)', function () {
  const { kms, createKey, listAllAliases, findAlias, encryptVia } = aliasSuite();

  /** One alias name created in us-west-2 and in eu-west-1, each for a key of its own region. */
  const oneAliasNameInTwoRegions = async (prefix: string) => {
    const west = await createKey('us-west-2');
    const eu = await createKey('eu-west-1');
    const alias = uniqueAlias(prefix);
    await kms('us-west-2').send(new CreateAliasCommand({ AliasName: alias, TargetKeyId: west.KeyId }));
    await kms('eu-west-1').send(new CreateAliasCommand({ AliasName: alias, TargetKeyId: eu.KeyId }));
    return { west, eu, alias };
  };

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
      const { west, eu, alias } = await oneAliasNameInTwoRegions('shared');
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
      const { west, alias } = await oneAliasNameInTwoRegions('regional');
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
});
