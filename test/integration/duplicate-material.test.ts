import { CreateKeyCommand, DecryptCommand, EncryptCommand, GenerateDataKeyCommand } from '@aws-sdk/client-kms';
import { expect } from 'chai';
import { readStore } from '../support/custody-invariants';
import { TestServer } from '../support/server';
import { createOrphanObject, listTokenObjects } from '../support/token-tool';

/**
 * One creation id naming several token objects (an object copied in from outside, material from
 * before creation ids): SoftHSM2 lists them in an order that changes between restarts, and a
 * process used whichever came first, so an old ciphertext failed in some restarts and not in
 * others. Now decryption tries each (only the right key passes AES-GCM's tag check), new
 * results use one every process agrees on, and /health and the log name the material.
 */
describe('several token objects under one creation id', function () {
  this.timeout(120_000);
  let server: TestServer | undefined;

  after(async () => server?.stop());

  it('old and new ciphertexts decrypt after every restart, and /health counts the material', async () => {
    server = await TestServer.start();
    const kms = server.client();
    const keyId = (await kms.send(new CreateKeyCommand({}))).KeyMetadata!.KeyId!;
    const sealed = [(await kms.send(new EncryptCommand({ KeyId: keyId, Plaintext: Buffer.from('before the copies') }))).CiphertextBlob!];
    const dataKey = await kms.send(new GenerateDataKeyCommand({ KeyId: keyId, KeySpec: 'AES_256' }));
    await server.stop();
    const dataDir = server.dataDir;
    const { creationId } = readStore(dataDir).keys[0].materials[0];
    // Three foreign AES keys under the key's label and CKA_ID: with the old choice, the key's
    // own object came first in about one start of four.
    for (let i = 0; i < 3; i++) createOrphanObject(dataDir, `p11kms:${keyId}:v1`, `p11kms#${creationId}`);
    expect(listTokenObjects(dataDir).filter((o) => o.label === `p11kms:${keyId}:v1`)).to.have.length(4);

    for (const start of [1, 2, 3]) {
      server = await TestServer.start({ dataDir });
      const client = server.client();
      await server.waitForLog(new RegExp(`"materials":\\["${keyId}:v1"\\],"msg":"key material named by several token objects`));
      const health = (await (await fetch(`${server.endpoint}/health`)).json()) as { duplicateKeyMaterial: number; missingMaterial: number; unknownTokenObjects: number };
      expect([health.duplicateKeyMaterial, health.missingMaterial, health.unknownTokenObjects], `start ${start}: duplicate, missing, unknown`).to.deep.equal([1, 0, 0]);
      for (const [i, blob] of sealed.entries()) {
        const { Plaintext } = await client.send(new DecryptCommand({ CiphertextBlob: blob }));
        expect(Buffer.from(Plaintext!).toString(), `start ${start}, ciphertext ${i}`).to.equal(i === 0 ? 'before the copies' : `start ${i}`);
      }
      const { Plaintext } = await client.send(new DecryptCommand({ CiphertextBlob: dataKey.CiphertextBlob }));
      expect(Buffer.from(Plaintext!).equals(Buffer.from(dataKey.Plaintext!)), `start ${start}: the data key`).to.equal(true);
      sealed.push((await client.send(new EncryptCommand({ KeyId: keyId, Plaintext: Buffer.from(`start ${start}`) }))).CiphertextBlob!);
      await server.stop();
    }
    server = undefined;
  });
});
