import * as path from 'node:path';
import {
  DecryptCommand,
  DescribeKeyCommand,
  DisableKeyCommand,
  DisableKeyRotationCommand,
  EnableKeyCommand,
  EnableKeyRotationCommand,
  EncryptCommand,
  GetKeyRotationStatusCommand,
  type KMSClient,
  ListKeyRotationsCommand,
  RotateKeyOnDemandCommand,
  ScheduleKeyDeletionCommand,
} from '@aws-sdk/client-kms';
import { expect } from 'chai';
import { aWholeSweepFromNow, type InProcessService, type ManualClock, openInProcessService, until } from '../support/in-process';
import { MaterialSweeper } from '../../src/lifecycle/material-sweeper';
import { reconcile } from '../../src/lifecycle/reconcile';
import type { RequestContext, Services } from '../../src/operations';
import { createKey } from '../../src/operations/create-key';
import { decrypt } from '../../src/operations/decrypt';
import { disableKey } from '../../src/operations/disable-key';
import { enableKey } from '../../src/operations/enable-key';
import { enableKeyRotation } from '../../src/operations/enable-key-rotation';
import { encrypt } from '../../src/operations/encrypt';
import { getKeyRotationStatus } from '../../src/operations/get-key-rotation-status';
import { listKeyRotations } from '../../src/operations/list-key-rotations';
import { rotateKeyOnDemand } from '../../src/operations/rotate-key-on-demand';
import { JsonFileStore } from '../../src/store/json/json-file-store';
import { readTrail } from '../support/audit-trail';
import { createdKey, expectKmsError, serverPerSuite, type TestServer } from '../support/server';
import { describeEachToken } from '../support/test-tokens';

const DAY_MS = 24 * 60 * 60 * 1000;
const text = (s: string) => Buffer.from(s, 'utf8');

describeEachToken('rotation (real server, real token)', function () {
  let server: TestServer;
  let kms: KMSClient;
  const suite = serverPerSuite({}, (started, client) => ([server, kms] = [started, client]));
  const newKey = (params: Record<string, unknown> = {}) => createdKey(kms, params);

  it('EnableKeyRotation defaults to 365 days; GetKeyRotationStatus reports period and NextRotationDate; Disable clears them', async () => {
    const { keyId, arn } = await newKey();
    expect(await kms.send(new GetKeyRotationStatusCommand({ KeyId: keyId }))).to.include({ KeyRotationEnabled: false, KeyId: arn });
    const before = Date.now();
    await kms.send(new EnableKeyRotationCommand({ KeyId: keyId }));
    const on = await kms.send(new GetKeyRotationStatusCommand({ KeyId: keyId }));
    expect(on.KeyRotationEnabled).to.equal(true);
    expect(on.RotationPeriodInDays).to.equal(365);
    expect(on.NextRotationDate!.getTime()).to.be.within(before + 365 * DAY_MS - 2000, Date.now() + 365 * DAY_MS + 2000);
    expect(on.OnDemandRotationStartDate).to.equal(undefined);
    await kms.send(new EnableKeyRotationCommand({ KeyId: keyId, RotationPeriodInDays: 90 }));
    const ninety = await kms.send(new GetKeyRotationStatusCommand({ KeyId: keyId }));
    expect(ninety.RotationPeriodInDays).to.equal(90);
    expect(ninety.NextRotationDate!.getTime()).to.be.below(before + 91 * DAY_MS);
    await kms.send(new DisableKeyRotationCommand({ KeyId: keyId }));
    const off = await kms.send(new GetKeyRotationStatusCommand({ KeyId: keyId }));
    expect(off.KeyRotationEnabled).to.equal(false);
    expect(off.RotationPeriodInDays).to.equal(undefined);
    expect(off.NextRotationDate).to.equal(undefined);
  });

  it('RotationPeriodInDays outside 90–2560 is a ValidationException', async () => {
    const { keyId } = await newKey();
    for (const days of [89, 2561]) {
      const err = await expectKmsError(kms.send(new EnableKeyRotationCommand({ KeyId: keyId, RotationPeriodInDays: days })));
      expect(err.name).to.equal('ValidationException');
      expect(err.message).to.contain(`Value '${days}' at 'rotationPeriodInDays'`);
    }
  });

  it('every version decrypts after several on-demand rotations and a restart; new ciphertexts use the newest; Decrypt names the material', async () => {
    const { keyId, arn } = await newKey();
    const blobs: Array<{ blob: Uint8Array; materialId: string }> = [];
    for (let i = 0; i < 4; i++) {
      const described = await kms.send(new DescribeKeyCommand({ KeyId: keyId }));
      const { CiphertextBlob } = await kms.send(new EncryptCommand({ KeyId: keyId, Plaintext: text(`v${i}`), EncryptionContext: { n: String(i) } }));
      blobs.push({ blob: CiphertextBlob!, materialId: described.KeyMetadata!.CurrentKeyMaterialId! });
      // The blob header carries the material version (docs/ciphertext-format.md).
      expect(Buffer.from(CiphertextBlob!).readUInt32BE(18)).to.equal(i + 1);
      if (i < 3) expect((await kms.send(new RotateKeyOnDemandCommand({ KeyId: keyId }))).KeyId).to.equal(arn);
    }
    expect(new Set(blobs.map((b) => b.materialId)).size).to.equal(4);
    const rotations = await kms.send(new ListKeyRotationsCommand({ KeyId: keyId }));
    expect(rotations.Rotations!.map((r) => r.KeyMaterialId)).to.deep.equal(blobs.slice(1).map((b) => b.materialId));
    expect(rotations.Rotations!.every((r) => r.RotationType === 'ON_DEMAND' && r.RotationDate instanceof Date)).to.equal(true);
    expect(rotations.Rotations![2].KeyMaterialState).to.equal('CURRENT');
    const all = await kms.send(new ListKeyRotationsCommand({ KeyId: keyId, IncludeKeyMaterial: 'ALL_KEY_MATERIAL' }));
    expect(all.Rotations!.length).to.equal(4);
    expect(all.Rotations![0]).to.include({ KeyMaterialId: blobs[0].materialId, KeyMaterialState: 'NON_CURRENT' });
    expect(all.Rotations![0].RotationDate).to.equal(undefined);

    const page1 = await kms.send(new ListKeyRotationsCommand({ KeyId: keyId, IncludeKeyMaterial: 'ALL_KEY_MATERIAL', Limit: 3 }));
    expect(page1.Truncated).to.equal(true);
    const page2 = await kms.send(new ListKeyRotationsCommand({ KeyId: keyId, IncludeKeyMaterial: 'ALL_KEY_MATERIAL', Limit: 3, Marker: page1.NextMarker }));
    expect([...page1.Rotations!, ...page2.Rotations!].map((r) => r.KeyMaterialId)).to.deep.equal(all.Rotations!.map((r) => r.KeyMaterialId));
    expect(page2.Truncated).to.equal(false);

    await suite.restart();
    for (const [i, b] of blobs.entries()) {
      const out = await kms.send(new DecryptCommand({ CiphertextBlob: b.blob, EncryptionContext: { n: String(i) } }));
      expect(Buffer.from(out.Plaintext!).toString()).to.equal(`v${i}`);
      expect(out.KeyMaterialId).to.equal(b.materialId);
    }
  });

  it('RotateKeyOnDemand stops at 25 with LimitExceededException', async function () {
    this.timeout(60_000);
    const { keyId, arn } = await newKey();
    for (let i = 0; i < 25; i++) await kms.send(new RotateKeyOnDemandCommand({ KeyId: keyId }));
    const err = await expectKmsError(kms.send(new RotateKeyOnDemandCommand({ KeyId: keyId })));
    expect(err.name).to.equal('LimitExceededException');
    expect(err.message).to.equal(`The on-demand rotations limit has been reached for the given keyId. No more on-demand rotations can be performed for this key: ${arn}`);
  });

  it('refuses as AWS does: asymmetric and HMAC keys, disabled, pending deletion, unknown keys', async () => {
    const rsa = await newKey({ KeySpec: 'RSA_2048', KeyUsage: 'ENCRYPT_DECRYPT' });
    const hmac = await newKey({ KeySpec: 'HMAC_256', KeyUsage: 'GENERATE_VERIFY_MAC' });
    for (const k of [rsa, hmac]) {
      for (const command of [new RotateKeyOnDemandCommand({ KeyId: k.keyId }), new EnableKeyRotationCommand({ KeyId: k.keyId }), new GetKeyRotationStatusCommand({ KeyId: k.keyId }), new ListKeyRotationsCommand({ KeyId: k.keyId })]) {
        const err = await expectKmsError(kms.send(command as never));
        expect(err.name).to.equal('UnsupportedOperationException');
      }
    }
    const disabled = await newKey();
    await kms.send(new DisableKeyCommand({ KeyId: disabled.keyId }));
    for (const command of [new RotateKeyOnDemandCommand({ KeyId: disabled.keyId }), new EnableKeyRotationCommand({ KeyId: disabled.keyId })]) {
      const err = await expectKmsError(kms.send(command as never));
      expect(err.name).to.equal('DisabledException');
      expect(err.message).to.equal(`${disabled.arn} is disabled.`);
    }
    await kms.send(new EnableKeyCommand({ KeyId: disabled.keyId }));
    await kms.send(new EnableKeyRotationCommand({ KeyId: disabled.keyId }));
    await kms.send(new ScheduleKeyDeletionCommand({ KeyId: disabled.keyId, PendingWindowInDays: 7 }));
    expect((await kms.send(new GetKeyRotationStatusCommand({ KeyId: disabled.keyId }))).KeyRotationEnabled).to.equal(false);
    const pending = await expectKmsError(kms.send(new RotateKeyOnDemandCommand({ KeyId: disabled.keyId })));
    expect(pending.name).to.equal('KMSInvalidStateException');
    expect(pending.message).to.equal(`${disabled.arn} is pending deletion.`);
    const unknown = '00000000-0000-4000-8000-000000000000';
    const missing = await expectKmsError(kms.send(new RotateKeyOnDemandCommand({ KeyId: unknown })));
    expect(missing.name).to.equal('NotFoundException');
    expect(missing.message).to.equal(`Key 'arn:aws:kms:us-east-1:111122223333:key/${unknown}' does not exist`);
  });

  it('automatic rotation that fell due while the service was down happens at start-up and is recorded as RotateKey, invoked by KMS', async () => {
    const { keyId, arn } = await newKey();
    const previous = (await kms.send(new DescribeKeyCommand({ KeyId: keyId }))).KeyMetadata!.CurrentKeyMaterialId;
    await kms.send(new EnableKeyRotationCommand({ KeyId: keyId, RotationPeriodInDays: 90 }));
    const { CiphertextBlob } = await kms.send(new EncryptCommand({ KeyId: keyId, Plaintext: text('before') }));
    const offset = 91 * 24 * 3600;
    await suite.restart({ clockOffsetSeconds: offset });
    const rotations = await kms.send(new ListKeyRotationsCommand({ KeyId: keyId }));
    expect(rotations.Rotations!.map((r) => r.RotationType)).to.deep.equal(['AUTOMATIC']);
    const status = await kms.send(new GetKeyRotationStatusCommand({ KeyId: keyId }));
    expect(status.NextRotationDate!.getTime()).to.be.greaterThan(Date.now() + offset * 1000 + 89 * DAY_MS);
    expect(Buffer.from((await kms.send(new DecryptCommand({ CiphertextBlob }))).Plaintext!).toString()).to.equal('before');
    // The developer guide's RotateKey example (eventVersion 1.11, 2025): a service event with no request or response.
    const record = readTrail(path.join(server.dataDir, 'audit')).find((r) => r.eventName === 'RotateKey' && r.serviceEventDetails?.keyId === keyId);
    expect(record).to.deep.include({
      userIdentity: { accountId: '111122223333', invokedBy: 'AWS Internal' },
      eventType: 'AwsServiceEvent',
      requestParameters: null,
      responseElements: null,
      resources: [{ accountId: '111122223333', type: 'AWS::KMS::Key', ARN: arn }],
      serviceEventDetails: { rotationType: 'AUTOMATIC', keyOrigin: 'AWS_KMS', previousKeyMaterialId: previous, currentKeyMaterialId: rotations.Rotations![0].KeyMaterialId, keyId },
    });
    await suite.restart({ clockOffsetSeconds: 0 });
  });
});

describeEachToken('rotation sweeper (running service, moving clock)', function () {
  let harness: InProcessService;
  let services: Services;
  let store: JsonFileStore;
  let ctx: RequestContext;
  let clock: ManualClock;
  let sweeper: MaterialSweeper;

  before(async () => {
    harness = await openInProcessService('rotation', Date.UTC(2030, 0, 1));
    ({ services, store, ctx, clock } = harness);
    sweeper = new MaterialSweeper(services, 25);
    sweeper.start();
  });

  after(async () => {
    await sweeper?.stop();
    await harness?.close();
  });

  it('rotates by itself each period, not before; every version still decrypts; reconcile keeps every version', async () => {
    const { KeyMetadata } = await createKey({}, ctx, services);
    const keyId = KeyMetadata!.KeyId;
    await enableKeyRotation({ KeyId: keyId, RotationPeriodInDays: 90 }, ctx, services);
    const blobs: Uint8Array[] = [];
    for (let period = 0; period < 3; period++) {
      blobs.push((await encrypt({ KeyId: keyId, Plaintext: text(`p${period}`) }, ctx, services)).CiphertextBlob!);
      clock.advance(90 * DAY_MS - 60_000);
      await aWholeSweepFromNow(sweeper);
      expect((await store.getKey({ keyId, region: ctx.scope.region }))!.currentVersion, 'a minute before the date').to.equal(period + 1);
      clock.advance(120_000);
      expect(await until(async () => (await store.getKey({ keyId, region: ctx.scope.region }))!.currentVersion === period + 2), `rotation ${period + 1}`).to.equal(true);
      expect(await services.custody.objects.exists({ keyId, version: period + 2 })).to.equal(true);
    }
    const rotations = await listKeyRotations({ KeyId: keyId }, ctx, services);
    expect(rotations.Rotations!.map((r) => r.RotationType)).to.deep.equal(['AUTOMATIC', 'AUTOMATIC', 'AUTOMATIC']);
    for (const [i, blob] of blobs.entries()) {
      expect(Buffer.from((await decrypt({ CiphertextBlob: Buffer.from(blob) }, ctx, services)).Plaintext!).toString()).to.equal(`p${i}`);
    }
    const status = await getKeyRotationStatus({ KeyId: keyId }, ctx, services);
    expect(status.NextRotationDate!.getTime()).to.equal((await store.getKey({ keyId, region: ctx.scope.region }))!.materials[3].rotatedAt! + 90 * DAY_MS);
    const report = await reconcile(services);
    expect(report.orphansDestroyed.filter((o) => o.startsWith(keyId))).to.deep.equal([]);
    expect(report.missingMaterial.filter((m) => m.keyId === keyId)).to.deep.equal([]);
  });

  it('reconcile reports no material missing for a key created and rotated after it listed the token', async () => {
    // The token is listed before the keys are read; make a key land in between, as a request would.
    const objects = services.custody.objects;
    const listObjects = objects.listObjects.bind(objects);
    let keyId: string | undefined;
    objects.listObjects = async () => {
      const before = await listObjects();
      objects.listObjects = listObjects;
      keyId = (await createKey({}, ctx, services)).KeyMetadata!.KeyId;
      await rotateKeyOnDemand({ KeyId: keyId }, ctx, services);
      return before;
    };
    try {
      const report = await reconcile(services);
      expect(keyId).to.be.a('string');
      expect(report.missingMaterial.filter((m) => m.keyId === keyId)).to.deep.equal([]);
      expect(report.orphansDestroyed.filter((o) => o.startsWith(keyId!))).to.deep.equal([]);
    } finally {
      objects.listObjects = listObjects;
    }
    expect(await objects.exists({ keyId: keyId!, version: 2 })).to.equal(true);
  });

  it('RotateKeyOnDemand is a ConflictException while the automatic rotation is due within 20 minutes, as AWS documents', async () => {
    const { KeyMetadata } = await createKey({}, ctx, services);
    const keyId = KeyMetadata!.KeyId;
    const version = async () => (await store.getKey({ keyId, region: ctx.scope.region }))!.currentVersion;
    await enableKeyRotation({ KeyId: keyId, RotationPeriodInDays: 90 }, ctx, services);
    clock.advance(90 * DAY_MS - 21 * 60_000);
    await rotateKeyOnDemand({ KeyId: keyId }, ctx, services);
    expect(await version(), '21 minutes before the date').to.equal(2);
    clock.advance(2 * 60_000);
    const err = await rotateKeyOnDemand({ KeyId: keyId }, ctx, services).then(
      () => undefined,
      (e: Error) => e,
    );
    expect(err?.name, '19 minutes before the date').to.equal('ConflictException');
    expect(err?.message).to.equal(`${KeyMetadata!.Arn} cannot be rotated on demand now: its automatic rotation is in progress or begins within 20 minutes.`);
    expect(await version()).to.equal(2);
    // The automatic rotation happens; the next one is a period away, so on-demand rotation works again.
    clock.advance(20 * 60_000);
    expect(await until(async () => (await version()) === 3), 'the automatic rotation').to.equal(true);
    await rotateKeyOnDemand({ KeyId: keyId }, ctx, services);
    expect(await version()).to.equal(4);
    const rotations = await listKeyRotations({ KeyId: keyId }, ctx, services);
    expect(rotations.Rotations!.map((r) => r.RotationType)).to.deep.equal(['ON_DEMAND', 'AUTOMATIC', 'ON_DEMAND']);
  });

  it('does not rotate a disabled key; rotates it at once when it is enabled again after its date', async () => {
    const { KeyMetadata } = await createKey({}, ctx, services);
    const keyId = KeyMetadata!.KeyId;
    await enableKeyRotation({ KeyId: keyId, RotationPeriodInDays: 90 }, ctx, services);
    await disableKey({ KeyId: keyId }, ctx, services);
    clock.advance(100 * DAY_MS);
    await sweeper.sweep();
    expect((await store.getKey({ keyId, region: ctx.scope.region }))!.currentVersion).to.equal(1);
    await enableKey({ KeyId: keyId }, ctx, services);
    expect(await until(async () => (await store.getKey({ keyId, region: ctx.scope.region }))!.currentVersion === 2)).to.equal(true);
  });
});
