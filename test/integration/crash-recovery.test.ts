import { randomBytes, randomInt } from 'node:crypto';
import {
  CreateKeyCommand,
  DecryptCommand,
  DeleteImportedKeyMaterialCommand,
  EncryptCommand,
  GetParametersForImportCommand,
  type KMSClient,
  RotateKeyOnDemandCommand,
  ScheduleKeyDeletionCommand,
} from '@aws-sdk/client-kms';
import { expect } from 'chai';
import { readStore } from '../support/custody-invariants';
import { importer, storeAndTokenFindings } from '../support/race-kit';
import { serverPerSuite, type TestServer } from '../support/server';
import { objectFilesBeyond } from '../support/softhsm2-object-file';
import { TokenInspector } from '../support/token-tool';

/** Crashes per kind of load; P11KMS_CRASH_ROUNDS raises it for soak runs. */
const ROUNDS = Number(process.env.P11KMS_CRASH_ROUNDS ?? 1);
const CLIENTS = 8;

/** What the clients were told before the crash: only acknowledged work must survive it. */
interface Acknowledged {
  keys: Set<string>;
  rotations: Map<string, number>;
  blobs: Array<{ keyId: string; blob: Uint8Array; text: string }>;
}

type Load = (kms: KMSClient, ack: Acknowledged, pool: Pool) => Promise<void>;

/** Keys that exist before the load: AWS_KMS keys to rotate, EXTERNAL keys to import into. */
interface Pool {
  symmetric: string[];
  external: Array<{ keyId: string; reimport: () => Promise<unknown> }>;
}

const pick = <T>(list: readonly T[]) => list[randomInt(list.length)];

const LOADS: Record<string, Load> = {
  CreateKey: async (kms, ack) => {
    const keyId = (await kms.send(new CreateKeyCommand({}))).KeyMetadata!.KeyId!;
    ack.keys.add(keyId);
    const text = `new key ${keyId}`;
    ack.blobs.push({ keyId, text, blob: (await kms.send(new EncryptCommand({ KeyId: keyId, Plaintext: Buffer.from(text) }))).CiphertextBlob! });
  },
  RotateKeyOnDemand: async (kms, ack, pool) => {
    const keyId = pick(pool.symmetric);
    await kms.send(new RotateKeyOnDemandCommand({ KeyId: keyId }));
    ack.rotations.set(keyId, (ack.rotations.get(keyId) ?? 0) + 1);
    const text = `rotated ${keyId}`;
    ack.blobs.push({ keyId, text, blob: (await kms.send(new EncryptCommand({ KeyId: keyId, Plaintext: Buffer.from(text) }))).CiphertextBlob! });
  },
  'ImportKeyMaterial, DeleteImportedKeyMaterial, GetParametersForImport': async (kms, _ack, pool) => {
    const key = pick(pool.external);
    const dice = randomInt(3);
    if (dice === 0) await key.reimport();
    else if (dice === 1) await kms.send(new DeleteImportedKeyMaterialCommand({ KeyId: key.keyId }));
    else await kms.send(new GetParametersForImportCommand({ KeyId: key.keyId, WrappingAlgorithm: 'RSAES_OAEP_SHA_1', WrappingKeySpec: 'RSA_2048' }));
  },
  'CreateKey (asymmetric, HMAC, EXTERNAL) and ScheduleKeyDeletion': async (kms, ack) => {
    const spec = pick(['ECC_NIST_P256', 'HMAC_256', 'EXTERNAL'] as const);
    const created = await kms.send(
      new CreateKeyCommand(
        spec === 'EXTERNAL' ? { Origin: 'EXTERNAL' } : spec === 'HMAC_256' ? { KeySpec: spec, KeyUsage: 'GENERATE_VERIFY_MAC' } : { KeySpec: spec, KeyUsage: 'SIGN_VERIFY' },
      ),
    );
    const keyId = created.KeyMetadata!.KeyId!;
    if (randomInt(2) === 0) await kms.send(new ScheduleKeyDeletionCommand({ KeyId: keyId, PendingWindowInDays: 7 }));
    else ack.keys.add(keyId);
  },
};

/**
 * kill -9 while clients run one kind of mutation (at a random number of acknowledged
 * requests, so the kill lands at a different point of the operations each time), restart,
 * and check: store and token agree exactly through PKCS#11 (no orphan, no torn object, no
 * open intent, nothing missing), no unfinished object file is left in the token directory,
 * every acknowledged key and rotation is there and every acknowledged ciphertext decrypts.
 */
describe('crash recovery: kill -9 during mutations, restart, nothing lost, nothing orphaned', function () {
  this.timeout(300_000);
  let server: TestServer;

  const suite = serverPerSuite({}, (started) => (server = started));

  for (const [name, load] of Object.entries(LOADS)) {
    it(`${name}: ${ROUNDS} crashes under ${CLIENTS} clients`, async () => {
      for (let round = 0; round < ROUNDS; round++) {
        const kms = server.client();
        const pool = await makePool(kms);
        const ack: Acknowledged = { keys: new Set(), rotations: new Map(), blobs: [] };
        let answered = 0;
        const killAt = randomInt(4, 40);
        let killed: () => void = () => undefined;
        const crash = new Promise<void>((r) => (killed = r));
        let stop = false;
        const workers = Array.from({ length: CLIENTS }, async () => {
          const mine = server.client();
          while (!stop) {
            try {
              await load(mine, ack, pool);
            } catch (err) {
              // Refusals of a valid race (the key changed state) are fine; the crash ends the loop.
              const status = (err as { $metadata?: { httpStatusCode?: number } }).$metadata?.httpStatusCode;
              if (status !== undefined && status >= 500) throw err;
              if (status === undefined) return;
            }
            if (++answered >= killAt) killed();
          }
        });
        await Promise.race([crash, Promise.all(workers)]);
        await server.kill();
        stop = true;
        await Promise.all(workers);

        await suite.restart();
        const inspector = new TokenInspector(server.dataDir);
        try {
          const where = `${name}, crash ${round} after ${answered} answers`;
          expect(await storeAndTokenFindings(server, inspector), where).to.deep.equal([]);
          expect(objectFilesBeyond(server.dataDir, (await inspector.list()).length), where).to.deep.equal([]);
          const store = readStore(server.dataDir);
          for (const keyId of ack.keys) expect(store.keys.some((k) => k.keyId === keyId), `${where}: key ${keyId}`).to.equal(true);
          for (const [keyId, count] of ack.rotations) {
            expect(store.keys.find((k) => k.keyId === keyId)!.materials.length, `${where}: rotations of ${keyId}`).to.be.at.least(1 + count);
          }
          const kmsAfter = server.client();
          for (const { blob, text } of ack.blobs) {
            expect(Buffer.from((await kmsAfter.send(new DecryptCommand({ CiphertextBlob: blob }))).Plaintext!).toString(), where).to.equal(text);
          }
        } finally {
          await inspector.close();
        }
      }
    });
  }
});

async function makePool(kms: KMSClient): Promise<Pool> {
  const symmetric = await Promise.all([0, 1, 2].map(async () => (await kms.send(new CreateKeyCommand({}))).KeyMetadata!.KeyId!));
  const external = await Promise.all(
    [0, 1].map(async () => {
      const keyId = (await kms.send(new CreateKeyCommand({ Origin: 'EXTERNAL' }))).KeyMetadata!.KeyId!;
      const material = randomBytes(32);
      const importMaterial = await importer(kms, keyId);
      await importMaterial(material);
      return { keyId, reimport: () => importMaterial(material) };
    }),
  );
  return { symmetric, external };
}
