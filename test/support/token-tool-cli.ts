/**
 * Out-of-process access to a test server's token through PKCS#11, independent of the
 * service's own code: `node token-tool-cli.js <dataDir> list|create-orphan <label or ''> [<id>]|destroy <label>|init-token|serve`.
 * `serve` logs in once and answers `list` lines on stdin with one JSON line each (SoftHSM2
 * 2.6.1 rewrites token.object at every C_Login, racing other processes' reads: one login only).
 * P11KMS_TEST_TOKEN names the test token (default SoftHSM2). Runs in its own process because
 * SoftHSM2 reads SOFTHSM2_CONF once per C_Initialize. TOKEN_LABEL and TOKEN_PIN choose another
 * token of the same SoftHSM2 directory (a custom key store backend); init-token creates it.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as readline from 'node:readline';
import * as pkcs11js from 'pkcs11js';
import { withTokenLock } from '../../src/custody/startup-lock';
import { loadTokenModule, TEST_TOKENS, tokenSlot } from './test-tokens';

const [dataDir, command, label, id] = process.argv.slice(2);
const testToken = TEST_TOKENS.find((t) => t.name === process.env.P11KMS_TEST_TOKEN) ?? TEST_TOKENS[0];
const token = { ...testToken, tokenLabel: process.env.TOKEN_LABEL ?? testToken.tokenLabel, pin: process.env.TOKEN_PIN ?? testToken.pin };
const p = new pkcs11js.PKCS11();
p.load(token.module);
void (async () => {
  try {
    if (command === 'init-token') {
      await withTokenLock(dataDir, () => {
        loadTokenModule(token, dataDir, p);
        const free = p.C_GetSlotList(true).find((s) => (p.C_GetTokenInfo(s).flags & pkcs11js.CKF_TOKEN_INITIALIZED) === 0);
        if (!free) throw new Error('no free slot');
        p.C_InitToken(free, '12345678', token.tokenLabel.padEnd(32, ' '));
        const so = p.C_OpenSession(free, pkcs11js.CKF_SERIAL_SESSION | pkcs11js.CKF_RW_SESSION);
        p.C_Login(so, pkcs11js.CKU_SO, '12345678');
        p.C_InitPIN(so, token.pin);
        p.C_CloseSession(so);
      });
      return;
    }
    // C_Initialize reads SoftHSM2's token.object and C_Login rewrites it: both under the lock the
    // service takes for its own (re-)initialisations. Read while the service rewrote it, the
    // file showed no token at all ("no token labelled 'p11kms'", seen on a busy machine).
    const logIn = () =>
      withTokenLock(dataDir, () => {
        loadTokenModule(token, dataDir, p);
        const opened = p.C_OpenSession(tokenSlot(p, token), pkcs11js.CKF_SERIAL_SESSION | pkcs11js.CKF_RW_SESSION);
        p.C_Login(opened, pkcs11js.CKU_USER, token.pin);
        return opened;
      });
    let session = await logIn();
    const flag = (v: unknown) => Boolean(v && (v as Buffer)[0]);
    const find = (template: pkcs11js.Template) => {
      p.C_FindObjectsInit(session, template);
      const found = p.C_FindObjects(session, 10_000);
      p.C_FindObjectsFinal(session);
      return found;
    };
    // The service may destroy an object between our find and our read of it: it is gone, so
    // it is not listed (the listing then shows the token as it is after that destruction).
    const vanished = (err: unknown) => /CKR_OBJECT_HANDLE_INVALID/.test(String((err as Error)?.message ?? err));
    const list = () =>
      find([{ type: pkcs11js.CKA_TOKEN, value: true }]).flatMap((h) => {
        try {
          return [describe(h)];
        } catch (err) {
          if (vanished(err)) return [];
          throw err;
        }
      });
    const describe = (h: pkcs11js.Handle) => {
        const [label, cls, ckaId] = p.C_GetAttributeValue(session, h, [{ type: pkcs11js.CKA_LABEL }, { type: pkcs11js.CKA_CLASS }, { type: pkcs11js.CKA_ID }]);
        const objectClass = (cls.value as Buffer).readUInt32LE(0);
        // Public keys have no sensitivity attributes.
        const secret = objectClass !== pkcs11js.CKO_PUBLIC_KEY;
        const a = secret
          ? p.C_GetAttributeValue(session, h, [
              { type: pkcs11js.CKA_SENSITIVE },
              { type: pkcs11js.CKA_EXTRACTABLE },
              { type: pkcs11js.CKA_ALWAYS_SENSITIVE },
              { type: pkcs11js.CKA_NEVER_EXTRACTABLE },
            ])
          : [];
        return {
          label: (label.value as Buffer).toString('utf8'),
          id: ((ckaId.value as Buffer | undefined) ?? Buffer.alloc(0)).toString('latin1'),
          class: objectClass,
          sensitive: secret && flag(a[0].value),
          extractable: secret && flag(a[1].value),
          alwaysSensitive: secret && flag(a[2].value),
          neverExtractable: secret && flag(a[3].value),
        };
      };
    if (command === 'list') {
      process.stdout.write(JSON.stringify(list()));
    } else if (command === 'serve') {
      // SoftHSM2 2.6.1 hides for good an object file it read while the service was writing it
      // (../shared/softhsm2-notes.md): when this view shows fewer objects than the token has
      // files, look again through a fresh one, as the service itself does.
      const listSettled = async () => {
        let objects = list();
        for (let again = 0; again < 2 && objects.length < (objectFiles() ?? 0); again++) {
          session = await logIn();
          objects = list();
        }
        return objects;
      };
      for await (const _line of readline.createInterface({ input: process.stdin })) {
        process.stdout.write(`${JSON.stringify(await listSettled())}\n`);
      }
    } else if (command === 'create-orphan') {
      // Without a label (''): what a creation torn by a crash can leave, a key object without label or id.
      p.C_GenerateKey(session, { mechanism: pkcs11js.CKM_AES_KEY_GEN }, [
        { type: pkcs11js.CKA_CLASS, value: pkcs11js.CKO_SECRET_KEY },
        { type: pkcs11js.CKA_KEY_TYPE, value: pkcs11js.CKK_AES },
        { type: pkcs11js.CKA_VALUE_LEN, value: 32 },
        { type: pkcs11js.CKA_TOKEN, value: true },
        { type: pkcs11js.CKA_PRIVATE, value: true },
        { type: pkcs11js.CKA_SENSITIVE, value: true },
        { type: pkcs11js.CKA_EXTRACTABLE, value: false },
        ...(label ? [{ type: pkcs11js.CKA_LABEL, value: label }] : []),
        ...(id ? [{ type: pkcs11js.CKA_ID, value: Buffer.from(id) }] : []),
      ]);
    } else if (command === 'destroy') {
      for (const h of find([{ type: pkcs11js.CKA_LABEL, value: label }])) p.C_DestroyObject(session, h);
    } else {
      throw new Error(`unknown command ${command}`);
    }
    p.C_CloseSession(session);
  } finally {
    try {
      p.C_Finalize();
    } catch {
      // Never initialised (the error that got us here says why).
    }
  }
})();

/** Object files of this token's SoftHSM2 directory (undefined when the token keeps no files: nothing to compare). */
function objectFiles(): number | undefined {
  if (!token.softhsm2ConfTemplate) return undefined;
  const tokens = path.join(dataDir, 'tokens');
  const label = Buffer.from(token.tokenLabel.padEnd(32, ' '));
  for (const dir of fs.readdirSync(tokens)) {
    const files = fs.readdirSync(path.join(tokens, dir));
    if (!files.includes('token.object') || !fs.readFileSync(path.join(tokens, dir, 'token.object')).includes(label)) continue;
    return files.filter((f) => f.endsWith('.object') && f !== 'token.object').length;
  }
  return undefined;
}
