import { execFileSync, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { CreateKeyCommand, DecryptCommand, EncryptCommand } from '@aws-sdk/client-kms';
import { expect } from 'chai';
import { objectFileState, SET_ASIDE_DIR, withTokenFlag } from '../../src/custody/softhsm2-files';
import { freshDatabaseUrl } from '../support/postgres';
import { storeAndTokenFindings } from '../support/race-kit';
import { TestServer } from '../support/server';
import { TokenInspector } from '../support/token-tool';
import { activeToken } from '../support/test-tokens';

const MAIN = path.resolve(__dirname, '..', '..', 'src', 'main.js');

const restoreSetAside = (dataDir: string) => spawnSync(process.execPath, [MAIN, 'token', 'restore-set-aside', '--data-dir', dataDir], { encoding: 'utf8' });

/** The token directory's object files, newest first. */
function objectFiles(dataDir: string): string[] {
  const tokens = path.join(dataDir, 'tokens');
  return fs
    .readdirSync(tokens, { withFileTypes: true })
    .filter((d) => d.isDirectory())
    .flatMap((d) => fs.readdirSync(path.join(tokens, d.name)).filter((f) => f.endsWith('.object') && f !== 'token.object').map((f) => path.join(tokens, d.name, f)))
    .sort((a, b) => fs.statSync(b).mtimeMs - fs.statSync(a).mtimeMs);
}

describe('embedded SoftHSM2 token files: a key stored unmarked is set aside, never removed, and can be restored', function () {
  this.timeout(60_000);
  before(function () {
    if (!activeToken().profile.endsWith('softhsm2.json')) this.skip();
  });

  it('start-up sets the file aside; `p11kms token restore-set-aside` puts it back and the key decrypts again', async () => {
    let server = await TestServer.start();
    const kms = server.client();
    const keyId = (await kms.send(new CreateKeyCommand({}))).KeyMetadata!.KeyId!;
    const sealed = (await kms.send(new EncryptCommand({ KeyId: keyId, Plaintext: Buffer.from('kept') }))).CiphertextBlob!;
    await server.stop();
    // What SoftHSM2 2.6.1 stored when a lookup raced a key's creation (before the profile
    // quirk lookupsCorruptObjectsBeingWritten): the whole key, with CKA_TOKEN false.
    const keyFile = objectFiles(server.dataDir)[0];
    fs.writeFileSync(keyFile, withTokenFlag(fs.readFileSync(keyFile), false)!);
    expect(objectFileState(fs.readFileSync(keyFile))).to.equal('unmarked key');

    server = await TestServer.start({ dataDir: server.dataDir });
    await server.waitForLog(/set aside token object files that hold a key value/);
    const aside = path.join(server.dataDir, SET_ASIDE_DIR, path.basename(path.dirname(keyFile)), path.basename(keyFile));
    expect(fs.existsSync(aside), 'the file is set aside').to.equal(true);
    expect(fs.existsSync(keyFile), 'and gone from the token directory').to.equal(false);
    const unavailable = await server.client().send(new DecryptCommand({ CiphertextBlob: sealed })).catch((e: Error) => e);
    expect((unavailable as Error).name).to.equal('KeyUnavailableException');
    const refused = restoreSetAside(server.dataDir);
    expect([refused.status, refused.stderr]).to.deep.equal([1, `p11kms token restore-set-aside: the service is running on ${server.dataDir} (pid ${server.pid}); stop it first\n`]);
    expect(fs.existsSync(aside), 'still set aside while the service runs').to.equal(true);
    await server.stop();

    const out = execFileSync(process.execPath, [MAIN, 'token', 'restore-set-aside', '--data-dir', server.dataDir], { encoding: 'utf8' });
    expect(out).to.contain(`restored ${keyFile}`);
    expect(fs.existsSync(aside)).to.equal(false);

    server = await TestServer.start({ dataDir: server.dataDir });
    const inspector = new TokenInspector(server.dataDir);
    try {
      const plain = (await server.client().send(new DecryptCommand({ CiphertextBlob: sealed }))).Plaintext!;
      expect(Buffer.from(plain).toString()).to.equal('kept');
      expect(await storeAndTokenFindings(server, inspector)).to.deep.equal([]);
    } finally {
      await inspector.close();
      await server.stop();
    }
  });

  it('`restore-set-aside` refuses while services sharing a PostgreSQL store use the token, and runs once the last of them was killed', async () => {
    const first = await TestServer.start({ env: { P11KMS_STORE_URL: await freshDatabaseUrl() } });
    const second = await TestServer.start({ ...first.options, dataDir: first.dataDir });
    try {
      const pids = [first.pid!, second.pid!].sort((a, b) => a - b);
      const refused = restoreSetAside(first.dataDir);
      expect([refused.status, refused.stderr]).to.deep.equal([1, `p11kms token restore-set-aside: the service is running on ${first.dataDir} (pid ${pids.join(', ')}); stop it first\n`]);
      await second.stop();
      await first.kill();
      // kill -9 leaves the process's record behind; its identity tells it is gone.
      expect(fs.readdirSync(path.join(first.dataDir, 'token-users'))).to.have.length(1);
      const done = restoreSetAside(first.dataDir);
      expect([done.status, done.stderr]).to.deep.equal([0, '']);
      expect(done.stdout).to.match(/^0 key object file\(s\) restored/);
    } finally {
      await second.stop();
      await first.stop();
    }
  });
});
