import { randomBytes } from 'node:crypto';
import {
  CancelKeyDeletionCommand,
  CreateKeyCommand,
  DecryptCommand,
  DeleteImportedKeyMaterialCommand,
  DescribeKeyCommand,
  DisableKeyCommand,
  EnableKeyCommand,
  EncryptCommand,
  type KMSClient,
  RotateKeyOnDemandCommand,
  ScheduleKeyDeletionCommand,
} from '@aws-sdk/client-kms';
import { expect } from 'chai';
import { DeletionSweeper } from '../../src/lifecycle/deletion-sweeper';
import { MaterialSweeper } from '../../src/lifecycle/material-sweeper';
import type { RequestContext, Services } from '../../src/operations';
import { createKey } from '../../src/operations/create-key';
import { enableKeyRotation } from '../../src/operations/enable-key-rotation';
import { rotateKeyOnDemand } from '../../src/operations/rotate-key-on-demand';
import { scheduleKeyDeletion } from '../../src/operations/schedule-key-deletion';
import { custodyFindings, readStore } from '../support/custody-invariants';
import { type InProcessService, openInProcessService } from '../support/in-process';
import { clients, importer, Outcomes, raceRig, storeAndTokenFindings } from '../support/race-kit';

/** Rounds per pair; P11KMS_RACE_ROUNDS raises it for soak runs. */
const ROUNDS = Number(process.env.P11KMS_RACE_ROUNDS ?? 4);
/** Clients per side of a pair, and operations per client per round. */
const CLIENTS = 3;
const OPS = 3;
const DAY_MS = 24 * 60 * 60 * 1000;

/** One key per round, shared by both sides of the pair. */
interface RoundKey {
  keyId: string;
  origin: 'AWS_KMS' | 'EXTERNAL';
  /** Imports the key's first material again (EXTERNAL keys). */
  reimport: (importType?: 'NEW_KEY_MATERIAL' | 'EXISTING_KEY_MATERIAL', material?: Buffer) => Promise<unknown>;
  material: Buffer;
  blobs: Array<{ blob: Uint8Array; text: string }>;
}

type Side = (kms: KMSClient, key: RoundKey, outcomes: Outcomes, client: number) => Promise<void>;

const rotate: Side = async (kms, key, outcomes) => {
  for (let i = 0; i < OPS; i++) {
    await outcomes.attempt('RotateKeyOnDemand', kms.send(new RotateKeyOnDemandCommand({ KeyId: key.keyId })), ['ConflictException', 'KMSInvalidStateException', 'DisabledException']);
  }
};
const importSame: Side = async (_kms, key, outcomes) => {
  for (let i = 0; i < OPS; i++) await outcomes.attempt('ImportKeyMaterial', key.reimport(), ['ConflictException', 'KMSInvalidStateException']);
};
const importNew: Side = async (_kms, key, outcomes) => {
  for (let i = 0; i < OPS; i++) {
    await outcomes.attempt('ImportKeyMaterial(NEW)', key.reimport('NEW_KEY_MATERIAL', randomBytes(32)), ['ConflictException', 'KMSInvalidStateException']);
  }
};
const deleteImported: Side = async (kms, key, outcomes) => {
  for (let i = 0; i < OPS; i++) {
    await outcomes.attempt('DeleteImportedKeyMaterial', kms.send(new DeleteImportedKeyMaterialCommand({ KeyId: key.keyId })), ['KMSInvalidStateException']);
  }
};
const encrypt: Side = async (kms, key, outcomes, client) => {
  for (let i = 0; i < OPS * 2; i++) {
    const text = `${key.keyId} client ${client} op ${i}`;
    const sealed = await outcomes.attempt('Encrypt', kms.send(new EncryptCommand({ KeyId: key.keyId, Plaintext: Buffer.from(text) })), ['KMSInvalidStateException', 'DisabledException']);
    if (sealed) key.blobs.push({ blob: sealed.CiphertextBlob!, text });
  }
};
const scheduleDeletion: Side = async (kms, key, outcomes) => {
  await outcomes.attempt('ScheduleKeyDeletion', kms.send(new ScheduleKeyDeletionCommand({ KeyId: key.keyId, PendingWindowInDays: 7 })), ['KMSInvalidStateException']);
};
const disableEnable: Side = async (kms, key, outcomes) => {
  for (let i = 0; i < OPS; i++) {
    await outcomes.attempt('DisableKey', kms.send(new DisableKeyCommand({ KeyId: key.keyId })), ['KMSInvalidStateException']);
    await outcomes.attempt('EnableKey', kms.send(new EnableKeyCommand({ KeyId: key.keyId })), ['KMSInvalidStateException']);
  }
};

const PAIRS: Array<{ name: string; origin: 'AWS_KMS' | 'EXTERNAL'; sides: [Side, Side] }> = [
  { name: 'rotate / rotate', origin: 'AWS_KMS', sides: [rotate, rotate] },
  { name: 'rotate / encrypt', origin: 'AWS_KMS', sides: [rotate, encrypt] },
  { name: 'rotate / disable-enable', origin: 'AWS_KMS', sides: [rotate, disableEnable] },
  { name: 'schedule-deletion / rotate', origin: 'AWS_KMS', sides: [scheduleDeletion, rotate] },
  { name: 'rotate / import (new material)', origin: 'EXTERNAL', sides: [rotate, importNew] },
  { name: 'import / import', origin: 'EXTERNAL', sides: [importSame, importSame] },
  { name: 'import / delete-imported', origin: 'EXTERNAL', sides: [importSame, deleteImported] },
  { name: 'delete-imported / encrypt', origin: 'EXTERNAL', sides: [deleteImported, encrypt] },
  { name: 'import / encrypt', origin: 'EXTERNAL', sides: [importSame, encrypt] },
  { name: 'schedule-deletion / import', origin: 'EXTERNAL', sides: [scheduleDeletion, importSame] },
];

/**
 * Every pair of mutations that can target one key, run from several clients at once for
 * several rounds; after each round: no 5xx and no unexpected error, store and token agree
 * exactly (checked through PKCS#11 from another process), every acknowledged on-demand
 * rotation is a version in the store and the token, and every ciphertext decrypts once the
 * key is usable again.
 */
describe('race matrix: pairs of mutations on one key', function () {
  this.timeout(300_000);
  const rig = raceRig();

  for (const pair of PAIRS) {
    it(`${pair.name}: ${ROUNDS} rounds, ${CLIENTS} clients a side`, async () => {
      const kms = rig.server.client();
      for (let round = 0; round < ROUNDS; round++) {
        const key = await freshKey(kms, pair.origin);
        const outcomes = new Outcomes();
        await Promise.all(pair.sides.map((side) => clients(CLIENTS, (c) => side(rig.server.client(), key, outcomes, c))));
        const where = `${pair.name}, round ${round}`;
        expect(outcomes.findings, where).to.deep.equal([]);
        expect(await storeAndTokenFindings(rig.server, rig.inspector), where).to.deep.equal([]);
        const record = readStore(rig.server.dataDir).keys.find((k) => k.keyId === key.keyId)!;
        if (pair.origin === 'AWS_KMS') {
          expect(record.materials.length, `${where}: versions`).to.equal(1 + outcomes.ok('RotateKeyOnDemand'));
        }
        await makeUsable(kms, key);
        for (const { blob, text } of key.blobs) {
          expect(Buffer.from((await kms.send(new DecryptCommand({ CiphertextBlob: blob }))).Plaintext!).toString(), where).to.equal(text);
        }
      }
    });
  }
});

async function freshKey(kms: KMSClient, origin: 'AWS_KMS' | 'EXTERNAL'): Promise<RoundKey> {
  const keyId = (await kms.send(new CreateKeyCommand({ Origin: origin }))).KeyMetadata!.KeyId!;
  const material = randomBytes(32);
  if (origin === 'AWS_KMS') return { keyId, origin, material, blobs: [], reimport: () => Promise.reject(new Error('not an EXTERNAL key')) };
  const importMaterial = await importer(kms, keyId);
  await importMaterial(material);
  return { keyId, origin, material, blobs: [], reimport: (importType, other) => importMaterial(other ?? material, importType) };
}

/** Cancels a deletion, enables, re-imports: whatever the round left, the key decrypts again. */
async function makeUsable(kms: KMSClient, key: RoundKey): Promise<void> {
  const state = async () => (await kms.send(new DescribeKeyCommand({ KeyId: key.keyId }))).KeyMetadata!.KeyState;
  if ((await state()) === 'PendingDeletion') await kms.send(new CancelKeyDeletionCommand({ KeyId: key.keyId }));
  if ((await state()) === 'PendingImport') await key.reimport();
  if ((await state()) === 'Disabled') await kms.send(new EnableKeyCommand({ KeyId: key.keyId }));
}

/**
 * The background sweepers against on-demand rotation, in process (real token and store, a
 * clock the test moves): the deletion sweeper deleting a key while rotations of it are in
 * flight, and the material sweeper rotating automatically while clients rotate on demand.
 */
describe('race matrix: sweepers against on-demand rotation', function () {
  this.timeout(120_000);
  let harness: InProcessService;
  let services: Services;
  let ctx: RequestContext;

  before(async () => {
    harness = await openInProcessService('race-sweepers', Date.UTC(2031, 0, 1));
    ({ services, ctx } = harness);
  });

  after(async () => harness?.close());

  const inProcessFindings = async () => {
    const objects = (await services.custody.objects.listObjects()).map((o) => ({ label: o.label, id: o.creationId ? `p11kms#${o.creationId}` : '' }));
    return custodyFindings({ keys: await services.store.listKeys(), intents: await services.store.listIntents() }, objects);
  };
  const rotations = (keyId: string, outcomes: Outcomes) =>
    clients(CLIENTS, async () => {
      for (let i = 0; i < OPS; i++) {
        await outcomes.attempt('RotateKeyOnDemand', rotateKeyOnDemand({ KeyId: keyId }, ctx, services), ['ConflictException', 'KMSInvalidStateException', 'NotFoundException']);
      }
    });

  it(`deletion sweeper / rotate: ${ROUNDS} rounds`, async () => {
    const sweeper = new DeletionSweeper(services, 60_000);
    for (let round = 0; round < ROUNDS; round++) {
      const keyId = (await createKey({}, ctx, services)).KeyMetadata!.KeyId;
      const outcomes = new Outcomes();
      await Promise.all([
        rotations(keyId, outcomes),
        (async () => {
          await scheduleKeyDeletion({ KeyId: keyId, PendingWindowInDays: 7 }, ctx, services);
          harness.clock.advance(8 * DAY_MS);
          await sweeper.sweep();
        })(),
      ]);
      expect(outcomes.findings, `round ${round}`).to.deep.equal([]);
      expect(await services.store.getKey({ keyId, region: ctx.scope.region }), `round ${round}`).to.equal(undefined);
      expect((await services.custody.objects.listObjects()).filter((o) => o.label.startsWith(`p11kms:${keyId}:`)), `round ${round}`).to.deep.equal([]);
      expect(await inProcessFindings(), `round ${round}`).to.deep.equal([]);
    }
  });

  it(`material sweeper (automatic rotation) / rotate on demand: ${ROUNDS} rounds`, async () => {
    const sweeper = new MaterialSweeper(services, 60_000, undefined, 5 * 60_000);
    for (let round = 0; round < ROUNDS; round++) {
      const keyId = (await createKey({}, ctx, services)).KeyMetadata!.KeyId;
      await enableKeyRotation({ KeyId: keyId, RotationPeriodInDays: 90 }, ctx, services);
      harness.clock.advance(91 * DAY_MS);
      const outcomes = new Outcomes();
      const [, swept] = await Promise.all([rotations(keyId, outcomes), sweeper.sweep()]);
      expect(outcomes.findings, `round ${round}`).to.deep.equal([]);
      const key = (await services.store.getKey({ keyId, region: ctx.scope.region }))!;
      expect(key.materials.length, `round ${round}: versions`).to.equal(1 + outcomes.ok('RotateKeyOnDemand') + swept.rotated.filter((id) => id === keyId).length);
      expect(await inProcessFindings(), `round ${round}`).to.deep.equal([]);
    }
  });
});
