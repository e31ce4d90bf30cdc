import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { expect } from 'chai';
import pino from 'pino';
import * as pkcs11js from 'pkcs11js';
import { loadConfig, loadHsmProfile } from '../../src/config/config';
import { mechanismNumbers, withSynchronousMechanisms } from '../../src/custody/synchronous-calls';
import { Token } from '../../src/custody/token';

/** Whether a promise settles before the event loop turns (a libuv pool call cannot). */
async function settlesAtOnce(p: Promise<unknown>): Promise<boolean> {
  let settled = false;
  p.then(
    () => (settled = true),
    () => (settled = true),
  );
  for (let i = 0; i < 5; i++) await Promise.resolve();
  const atOnce = settled;
  await p.catch(() => undefined);
  return atOnce;
}

describe('synchronous mechanisms (profile setting for in-process software tokens)', function () {
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'p11kms-sync-calls-'));
  let token: Token;
  let pool: pkcs11js.PKCS11;
  let sync: pkcs11js.PKCS11;
  const iv = Buffer.alloc(12, 9);
  const aad = Buffer.from('context');
  const gcm = { mechanism: pkcs11js.CKM_AES_GCM, parameter: { type: pkcs11js.CK_PARAMS_GCM, iv, aad, ivBits: 96, tagBits: 128 } as pkcs11js.GcmParams };
  const sessionAesKey = (session: Buffer) =>
    pool.C_GenerateKey(session, { mechanism: pkcs11js.CKM_AES_KEY_GEN }, [
      { type: pkcs11js.CKA_CLASS, value: pkcs11js.CKO_SECRET_KEY },
      { type: pkcs11js.CKA_KEY_TYPE, value: pkcs11js.CKK_AES },
      { type: pkcs11js.CKA_VALUE_LEN, value: 32 },
      { type: pkcs11js.CKA_TOKEN, value: false },
      { type: pkcs11js.CKA_ENCRYPT, value: true },
      { type: pkcs11js.CKA_DECRYPT, value: true },
    ]);
  const secretTemplate = (onToken: boolean): pkcs11js.Template => [
    { type: pkcs11js.CKA_CLASS, value: pkcs11js.CKO_SECRET_KEY },
    { type: pkcs11js.CKA_KEY_TYPE, value: pkcs11js.CKK_GENERIC_SECRET },
    { type: pkcs11js.CKA_VALUE_LEN, value: 32 },
    { type: pkcs11js.CKA_TOKEN, value: onToken },
    { type: pkcs11js.CKA_PRIVATE, value: true },
  ];

  before(() => {
    // Opened here, not when the file loads: other suites in this process finalize the module when they close.
    // The token's own calls all go to the pool; the facade under test wraps that same module.
    token = Token.open({ ...loadHsmProfile(loadConfig({ env: { P11KMS_DATA_DIR: dataDir } })), synchronousMechanisms: [] }, dataDir, pino({ level: 'silent' }));
    pool = token.pkcs11;
    sync = withSynchronousMechanisms(pool, mechanismNumbers(['CKM_AES_GCM', 'CKM_GENERIC_SECRET_KEY_GEN'], 'test'));
  });

  after(() => {
    token.close();
    fs.rmSync(dataDir, { recursive: true, force: true });
  });

  it('runs a listed mechanism on the calling thread with the same result as the pool', async () => {
    await token.run('test', async (session) => {
      const key = sessionAesKey(session);
      const plaintext = Buffer.from('thirty-two bytes of plaintext!!!');
      pool.C_EncryptInit(session, gcm, key);
      const onPool = pool.C_EncryptAsync(session, plaintext, Buffer.alloc(48));
      expect(await settlesAtOnce(onPool), 'pkcs11js async calls use the libuv pool').to.equal(false);
      sync.C_EncryptInit(session, gcm, key);
      const inline = sync.C_EncryptAsync(session, plaintext, Buffer.alloc(48));
      expect(await settlesAtOnce(inline), 'listed mechanism').to.equal(true);
      expect((await inline).equals(await onPool), 'same key and IV, same ciphertext').to.equal(true);
      sync.C_DecryptInit(session, gcm, key);
      expect((await sync.C_DecryptAsync(session, await inline, Buffer.alloc(48))).equals(plaintext)).to.equal(true);
      pool.C_DestroyObject(session, key);
    });
  });

  it('rejects with the same pkcs11js error as the pool when the call fails', async () => {
    const failures: string[] = [];
    for (const calls of [pool, sync]) {
      // One failed operation leaves a session unusable: each attempt gets its own.
      await token
        .run('test', async (session) => {
          const key = sessionAesKey(session);
          calls.C_DecryptInit(session, gcm, key);
          const tampered = Buffer.alloc(48, 1);
          await calls.C_DecryptAsync(session, tampered, Buffer.alloc(48));
        })
        .catch((err: Error) => failures.push(`${err.name}: ${(err as { internalDetail?: string }).internalDetail ?? err.message}`));
    }
    expect(failures).to.have.length(2);
    expect(failures[0]).to.match(/CKR_[A-Z_]+/);
    expect(failures[1]).to.equal(failures[0]);
  });

  it('leaves unlisted mechanisms, and any call that creates a token object, on the pool', async () => {
    await token.run('test', async (session) => {
      const key = sessionAesKey(session);
      sync.C_SignInit(session, { mechanism: pkcs11js.CKM_AES_CMAC }, key);
      const unlisted = sync.C_SignAsync(session, Buffer.from('message'), Buffer.alloc(16));
      expect(await settlesAtOnce(unlisted), 'CKM_AES_CMAC is not listed').to.equal(false);
      const sessionSecret = sync.C_GenerateKeyAsync(session, { mechanism: pkcs11js.CKM_GENERIC_SECRET_KEY_GEN }, secretTemplate(false));
      expect(await settlesAtOnce(sessionSecret), 'a session object of a listed mechanism').to.equal(true);
      const tokenSecret = sync.C_GenerateKeyAsync(session, { mechanism: pkcs11js.CKM_GENERIC_SECRET_KEY_GEN }, secretTemplate(true));
      expect(await settlesAtOnce(tokenSecret), 'a token object writes files').to.equal(false);
      for (const handle of [key, await sessionSecret, await tokenSecret]) pool.C_DestroyObject(session, handle);
    });
  });

  it('refuses a profile naming an unknown mechanism', () => {
    expect(() => mechanismNumbers(['CKM_AES_GCM', 'CKM_NO_SUCH_THING'], 'broken')).to.throw(/broken.*CKM_NO_SUCH_THING/);
  });
});
