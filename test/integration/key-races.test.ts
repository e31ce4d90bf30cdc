import { randomBytes } from 'node:crypto';
import {
  CreateAliasCommand,
  CreateKeyCommand,
  DecryptCommand,
  DeleteImportedKeyMaterialCommand,
  DescribeKeyCommand,
  EncryptCommand,
  ListKeyRotationsCommand,
  RotateKeyOnDemandCommand,
} from '@aws-sdk/client-kms';
import { expect } from 'chai';
import { readStore } from '../support/custody-invariants';
import { clients, importer, Outcomes, raceRig, storeAndTokenFindings } from '../support/race-kit';

/**
 * The reproductions of issue 10: several clients mutating one key at once must never lose
 * acknowledged material, and never get a 5xx for a valid request. The token is checked
 * through PKCS#11 from another process, the store on disk.
 */
describe('concurrent mutations of one key lose nothing (issue 10 reproductions)', function () {
  this.timeout(120_000);
  const rig = raceRig();

  it('eight clients rotating one key three times each: every acknowledged version stays in the token and decrypts', async () => {
    const kms = rig.server.client();
    const keyId = (await kms.send(new CreateKeyCommand({}))).KeyMetadata!.KeyId!;
    const outcomes = new Outcomes();
    const blobs: Array<{ blob: Uint8Array; text: string }> = [];
    await clients(8, async (c) => {
      const mine = rig.server.client();
      for (let round = 0; round < 3; round++) {
        await outcomes.attempt('RotateKeyOnDemand', mine.send(new RotateKeyOnDemandCommand({ KeyId: keyId })), ['ConflictException']);
        const text = `client ${c} round ${round}`;
        const sealed = await outcomes.attempt('Encrypt', mine.send(new EncryptCommand({ KeyId: keyId, Plaintext: Buffer.from(text) })));
        if (sealed) blobs.push({ blob: sealed.CiphertextBlob!, text });
      }
    });
    expect(outcomes.findings).to.deep.equal([]);
    const rotations = (await kms.send(new ListKeyRotationsCommand({ KeyId: keyId }))).Rotations ?? [];
    expect(rotations).to.have.length(outcomes.ok('RotateKeyOnDemand'));
    const versions = (await rig.inspector.list()).filter((o) => o.label.startsWith(`p11kms:${keyId}:v`));
    expect(versions, 'one token object per version').to.have.length(1 + outcomes.ok('RotateKeyOnDemand'));
    expect(await storeAndTokenFindings(rig.server, rig.inspector)).to.deep.equal([]);
    for (const { blob, text } of blobs) {
      expect(Buffer.from((await kms.send(new DecryptCommand({ CiphertextBlob: blob }))).Plaintext!).toString()).to.equal(text);
    }
  });

  it('ImportKeyMaterial, DeleteImportedKeyMaterial and Encrypt racing on one key: no 5xx; Enabled always means material in the token', async () => {
    const kms = rig.server.client();
    const keyId = (await kms.send(new CreateKeyCommand({ Origin: 'EXTERNAL' }))).KeyMetadata!.KeyId!;
    const material = randomBytes(32);
    const imports = await Promise.all([0, 1].map(() => importer(rig.server.client(), keyId)));
    await imports[0](material);
    const outcomes = new Outcomes();
    const blobs: Array<{ blob: Uint8Array; text: string }> = [];
    for (let round = 0; round < 8; round++) {
      await Promise.all([
        ...imports.map((importMaterial) => clients(1, async () => {
          for (let i = 0; i < 3; i++) await outcomes.attempt('ImportKeyMaterial', importMaterial(material), ['ConflictException']);
        })),
        clients(2, async () => {
          const mine = rig.server.client();
          for (let i = 0; i < 3; i++) await outcomes.attempt('DeleteImportedKeyMaterial', mine.send(new DeleteImportedKeyMaterialCommand({ KeyId: keyId })), ['KMSInvalidStateException']);
        }),
        clients(1, async () => {
          const mine = rig.server.client();
          for (let i = 0; i < 6; i++) {
            const text = `round ${round} encrypt ${i}`;
            const sealed = await outcomes.attempt('Encrypt', mine.send(new EncryptCommand({ KeyId: keyId, Plaintext: Buffer.from(text) })), ['KMSInvalidStateException']);
            if (sealed) blobs.push({ blob: sealed.CiphertextBlob!, text });
          }
        }),
      ]);
      expect(outcomes.findings, `round ${round}`).to.deep.equal([]);
      expect(await storeAndTokenFindings(rig.server, rig.inspector), `round ${round}`).to.deep.equal([]);
      const state = (await kms.send(new DescribeKeyCommand({ KeyId: keyId }))).KeyMetadata!.KeyState;
      const inToken = (await rig.inspector.list()).some((o) => o.label === `p11kms:${keyId}:v1`);
      expect(inToken, `round ${round}: key ${state}`).to.equal(state === 'Enabled');
    }
    await imports[1](material);
    for (const { blob, text } of blobs) {
      expect(Buffer.from((await kms.send(new DecryptCommand({ CiphertextBlob: blob }))).Plaintext!).toString()).to.equal(text);
    }
    expect(outcomes.ok('Encrypt'), 'some encryptions happened while the material was imported').to.be.greaterThan(0);
  });

  it('eight clients looping CreateKey, CreateAlias, Encrypt: every valid request succeeds', async () => {
    const outcomes = new Outcomes();
    await clients(8, async (c) => {
      const mine = rig.server.client();
      for (let i = 0; i < 6; i++) {
        const created = await outcomes.attempt('CreateKey', mine.send(new CreateKeyCommand({})));
        if (!created) continue;
        const keyId = created.KeyMetadata!.KeyId!;
        await outcomes.attempt('CreateAlias', mine.send(new CreateAliasCommand({ AliasName: `alias/load-${c}-${i}`, TargetKeyId: keyId })));
        await outcomes.attempt('Encrypt', mine.send(new EncryptCommand({ KeyId: `alias/load-${c}-${i}`, Plaintext: Buffer.from('x') })));
      }
    });
    expect(outcomes.findings).to.deep.equal([]);
    expect(outcomes.ok('Encrypt')).to.equal(48);
    expect(await storeAndTokenFindings(rig.server, rig.inspector)).to.deep.equal([]);
    expect(readStore(rig.server.dataDir).intents).to.deep.equal([]);
  });
});
