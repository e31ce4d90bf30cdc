/**
 * Once it listens, the service compiles every operation's request validator and builds the
 * store's views (server/warm-up.ts, one step per event-loop turn while no request is in
 * flight), so that the first key uses after a start do not pay for them. Requests sent at once
 * after the start are answered as ever, also those whose validator is not compiled yet, and a
 * stop right after the start (while the warm-up runs) is a clean stop.
 */
import { CreateAliasCommand, CreateKeyCommand, DecryptCommand, EncryptCommand, GenerateRandomCommand, ListAliasesCommand } from '@aws-sdk/client-kms';
import { expect } from 'chai';
import { OPERATIONS } from '../../src/model/generated/shapes';
import { TestServer } from '../support/server';

/** The JSON store's warm-up steps (JsonFileStore.warmUps): aliases and grants by key. */
const JSON_STORE_STEPS = 2;

describe('warm-up after listening', function () {
  this.timeout(60_000);

  it('runs a step per operation and per store view and says so, while requests sent at once after the start are answered', async () => {
    const server = await TestServer.start();
    try {
      const kms = server.client();
      // Pre: nothing has been sent to this server yet (the harness waits for its "listening" line only).
      const [created, random, refused] = await Promise.all([
        kms.send(new CreateKeyCommand({ Description: 'made during the warm-up' })),
        kms.send(new GenerateRandomCommand({ NumberOfBytes: 16 })),
        kms.send(new ListAliasesCommand({ Limit: 0 })).then(
          () => undefined,
          (err: Error) => err,
        ),
      ]);
      expect(random.Plaintext).to.have.length(16);
      expect(refused?.name).to.equal('ValidationException');
      expect(refused?.message).to.equal("1 validation error detected: Value '0' at 'limit' failed to satisfy constraint: Member must have value greater than or equal to 1");
      const keyId = created.KeyMetadata!.KeyId!;
      await kms.send(new CreateAliasCommand({ AliasName: 'alias/warm-up', TargetKeyId: keyId }));
      const encrypted = await kms.send(new EncryptCommand({ KeyId: 'alias/warm-up', Plaintext: Buffer.from('warm') }));
      const decrypted = await kms.send(new DecryptCommand({ CiphertextBlob: encrypted.CiphertextBlob }));
      expect(Buffer.from(decrypted.Plaintext!).toString()).to.equal('warm');

      await server.waitForLog(/warmed up/);
      const line = server.stderr().split('\n').find((l) => l.includes('warmed up'))!;
      const logged = JSON.parse(line) as { steps: number; ms: number };
      expect(logged.steps).to.equal(Object.keys(OPERATIONS).length + JSON_STORE_STEPS);
      expect(server.stderr(), 'no step failed').not.to.match(/warm-up step failed/);
    } finally {
      await server.stop();
    }
  });

  it('a SIGTERM right after the start ends the service cleanly', async () => {
    const server = await TestServer.start();
    server.sendSignal('SIGTERM');
    expect(await server.exited).to.equal(0);
    expect(server.stderr()).to.match(/shut down cleanly/);
  });
});
