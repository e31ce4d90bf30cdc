import { randomInt } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { CreateKeyCommand, EncryptCommand, GetKeyLastUsageCommand } from '@aws-sdk/client-kms';
import { expect } from 'chai';
import { metricSample, serverPerSuite, type TestServer } from '../support/server';

const ROUNDS = 3;
const CLIENTS = 6;
const KEYS = 4;

/** An Encrypt its client was answered: when it was sent (the use it left is no older). */
interface Use {
  sentAt: number;
}

async function usageFlushes(server: TestServer): Promise<number> {
  const metrics = await (await fetch(`${server.endpoint}/metrics`)).text();
  return metricSample(metrics, 'p11kms_store_duration_seconds_count{method="transactLastUsage"} ') ?? 0;
}

/**
 * kill -9 while several clients use keys and the usage flush runs every second
 * (P11KMS_SWEEP_INTERVAL_SECONDS=1), at a random point after a flush was seen, several times in
 * a row on one data directory: every restart opens the store (a last use torn by the kill is
 * cut off, never a refusal), and each key's GetKeyLastUsage names a use of that key no older
 * than the last one its clients were answered before a flush that surely followed it, never a
 * use of another key.
 */
describe('crash recovery: kill -9 while last uses are flushed, restart', function () {
  this.timeout(180_000);
  let server: TestServer;
  const suite = serverPerSuite({ sweepIntervalSeconds: 1 }, (started) => (server = started));

  it(`${ROUNDS} crashes under ${CLIENTS} clients: every key's last use is one it had, no older than the last surely flushed`, async () => {
    const kms = server.client();
    const keyIds: string[] = [];
    for (let i = 0; i < KEYS; i++) keyIds.push((await kms.send(new CreateKeyCommand({}))).KeyMetadata!.KeyId!);
    const ownerOf = new Map<string, string>();
    for (let round = 0; round < ROUNDS; round++) {
      const acknowledged = new Map<string, Use[]>(keyIds.map((k) => [k, []]));
      let answered = 0;
      let stop = false;
      const clients = Array.from({ length: CLIENTS }, async () => {
        const mine = server.client();
        while (!stop) {
          const keyId = keyIds[randomInt(KEYS)];
          const sentAt = Date.now();
          try {
            const out = await mine.send(new EncryptCommand({ KeyId: keyId, Plaintext: Buffer.from('used') }));
            acknowledged.get(keyId)!.push({ sentAt });
            ownerOf.set(out.$metadata.requestId!, keyId);
            answered++;
          } catch (err) {
            if ((err as { $metadata?: { httpStatusCode?: number } }).$metadata?.httpStatusCode !== undefined) throw err;
            return; // the connection died with the process
          }
        }
      });
      // Every use answered before `seen` flushes completed is in the flush after the next one
      // (flushes run one after another, each over the uses recorded before it began).
      while ([...acknowledged.values()].some((uses) => uses.length === 0)) await new Promise((r) => setTimeout(r, 10));
      const seen = await usageFlushes(server);
      const lastBefore = new Map([...acknowledged].map(([k, uses]) => [k, uses.at(-1)!]));
      while ((await usageFlushes(server)) < seen + 2) await new Promise((r) => setTimeout(r, 50));
      const killAt = answered + randomInt(0, 300);
      while (answered < killAt) await new Promise((r) => setImmediate(r));
      await server.kill();
      stop = true;
      await Promise.all(clients);

      await suite.restart();
      const where = `crash ${round} after ${answered} answers`;
      expect(fs.existsSync(path.join(server.dataDir, 'last-usage.journal')) || fs.existsSync(path.join(server.dataDir, 'last-usage.json')), where).to.equal(true);
      const after = server.client();
      for (const keyId of keyIds) {
        const found = (await after.send(new GetKeyLastUsageCommand({ KeyId: keyId }))).KeyLastUsage;
        const floor = lastBefore.get(keyId)!;
        expect(found?.Operation, `${where}: ${keyId}`).to.equal('Encrypt');
        // A use recorded but not answered before the kill may be the one: no client knows its id.
        expect(ownerOf.get(found!.KmsRequestId!) ?? keyId, `${where}: ${keyId}'s last use is a use of another key`).to.equal(keyId);
        // Uses are stamped when served, so after they were sent (and the clock is the same).
        expect(found!.Timestamp!.getTime(), `${where}: ${keyId}'s last use is older than one surely flushed`).to.be.at.least(floor.sentAt);
      }
    }
  });
});
