import { randomBytes } from 'node:crypto';
import * as path from 'node:path';
import {
  CreateKeyCommand,
  DecryptCommand,
  DescribeKeyCommand,
  EncryptCommand,
  type KMSClient,
  ListKeyRotationsCommand,
  RotateKeyOnDemandCommand,
} from '@aws-sdk/client-kms';
import { expect } from 'chai';
import { readTrail } from '../support/audit-trail';
import { serverPerSuite, type TestServer } from '../support/server';
import { importWrapped } from '../support/wrap-material';

const DAY_MS = 24 * 60 * 60 * 1000;

/** Several imported materials on one symmetric key (on-demand rotation of imported keys), as AWS reports them. */
describe('imported key material across rotations (real server, real token)', function () {
  let server: TestServer;
  let kms: KMSClient;
  const suite = serverPerSuite({}, (started, client) => ([server, kms] = [started, client]));

  const importInto = (client: KMSClient, keyId: string, material: Buffer, extra: Record<string, unknown> = {}) =>
    importWrapped(client, keyId, material, { algorithm: 'RSAES_OAEP_SHA_256', extra });

  it('DescribeKey ValidTo is the earliest expiry of any material permanently associated with the key, not only the current one', async () => {
    const { KeyMetadata } = await kms.send(new CreateKeyCommand({ Origin: 'EXTERNAL' }));
    const keyId = KeyMetadata!.KeyId!;
    const firstValidTo = new Date(Date.now() + 5 * DAY_MS);
    const pendingValidTo = new Date(Date.now() + 3 * DAY_MS);
    await importInto(kms, keyId, randomBytes(32), { ExpirationModel: 'KEY_MATERIAL_EXPIRES', ValidTo: firstValidTo });
    await importInto(kms, keyId, randomBytes(32), { ImportType: 'NEW_KEY_MATERIAL', ExpirationModel: 'KEY_MATERIAL_EXPIRES', ValidTo: pendingValidTo });
    // Material pending rotation is not permanently associated: it does not count yet.
    const before = (await kms.send(new DescribeKeyCommand({ KeyId: keyId }))).KeyMetadata!;
    expect([before.ExpirationModel, before.ValidTo?.getTime()]).to.deep.equal(['KEY_MATERIAL_EXPIRES', firstValidTo.getTime()]);
    await kms.send(new RotateKeyOnDemandCommand({ KeyId: keyId }));
    const rotated = (await kms.send(new DescribeKeyCommand({ KeyId: keyId }))).KeyMetadata!;
    expect([rotated.ExpirationModel, rotated.ValidTo?.getTime()]).to.deep.equal(['KEY_MATERIAL_EXPIRES', pendingValidTo.getTime()]);

    // A current material that does not expire still leaves the earlier one's date.
    const { KeyMetadata: other } = await kms.send(new CreateKeyCommand({ Origin: 'EXTERNAL' }));
    await importInto(kms, other!.KeyId!, randomBytes(32), { ExpirationModel: 'KEY_MATERIAL_EXPIRES', ValidTo: firstValidTo });
    await importInto(kms, other!.KeyId!, randomBytes(32), { ImportType: 'NEW_KEY_MATERIAL' });
    await kms.send(new RotateKeyOnDemandCommand({ KeyId: other!.KeyId }));
    const described = (await kms.send(new DescribeKeyCommand({ KeyId: other!.KeyId }))).KeyMetadata!;
    expect([described.ExpirationModel, described.ValidTo?.getTime()]).to.deep.equal(['KEY_MATERIAL_EXPIRES', firstValidTo.getTime()]);
  });

  it('material pending rotation that expires is forgotten: the key stays Enabled and other material can be imported in its place and rotated to; RotateKey names both materials', async () => {
    const { KeyMetadata } = await kms.send(new CreateKeyCommand({ Origin: 'EXTERNAL' }));
    const keyId = KeyMetadata!.KeyId!;
    const first = await importInto(kms, keyId, randomBytes(32));
    const { CiphertextBlob } = await kms.send(new EncryptCommand({ KeyId: keyId, Plaintext: Buffer.from('first') }));
    const pending = await importInto(kms, keyId, randomBytes(32), { ImportType: 'NEW_KEY_MATERIAL', ExpirationModel: 'KEY_MATERIAL_EXPIRES', ValidTo: new Date(Date.now() + DAY_MS) });

    // Two days later (the start-up sweep expires what is due).
    const offsetMs = 2 * DAY_MS;
    await suite.restart({ clockOffsetSeconds: offsetMs / 1000 });
    await server.waitForLog(/imported key material expired and was deleted/);
    const listed = await kms.send(new ListKeyRotationsCommand({ KeyId: keyId, IncludeKeyMaterial: 'ALL_KEY_MATERIAL' }));
    expect(listed.Rotations!.map((r) => [r.KeyMaterialId, r.KeyMaterialState, r.ImportState])).to.deep.equal([[first.KeyMaterialId, 'CURRENT', 'IMPORTED']]);
    expect((await kms.send(new DescribeKeyCommand({ KeyId: keyId }))).KeyMetadata).to.include({ KeyState: 'Enabled', CurrentKeyMaterialId: first.KeyMaterialId });

    const replacement = await importInto(kms, keyId, randomBytes(32), { ImportType: 'NEW_KEY_MATERIAL' });
    expect(replacement.KeyMaterialId).to.not.equal(pending.KeyMaterialId);
    await kms.send(new RotateKeyOnDemandCommand({ KeyId: keyId }));
    expect((await kms.send(new DescribeKeyCommand({ KeyId: keyId }))).KeyMetadata!.CurrentKeyMaterialId).to.equal(replacement.KeyMaterialId);
    expect((await kms.send(new DecryptCommand({ CiphertextBlob }))).KeyMaterialId).to.equal(first.KeyMaterialId);
    const record = readTrail(path.join(server.dataDir, 'audit')).find((r) => r.eventName === 'RotateKey' && r.serviceEventDetails?.keyId === keyId);
    expect(record?.serviceEventDetails).to.deep.equal({
      rotationType: 'ON_DEMAND',
      keyOrigin: 'EXTERNAL',
      previousKeyMaterialId: first.KeyMaterialId,
      currentKeyMaterialId: replacement.KeyMaterialId,
      keyId,
    });
  });
});
