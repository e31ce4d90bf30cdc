/**
 * Key custody, checked through the PKCS#11 interface itself, independently of the service:
 * the test process loads the token module (SoftHSM2, then NSS softokn) through pkcs11js on
 * the server's own token and inspects
 * what is really stored there. Also checks that no plaintext or data key reaches the data
 * directory or the service log.
 */
import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { expect } from 'chai';
import * as pkcs11js from 'pkcs11js';
import {
  CreateKeyCommand,
  DecryptCommand,
  DescribeKeyCommand,
  EncryptCommand,
  GenerateDataKeyCommand,
  GenerateDataKeyWithoutPlaintextCommand,
  type KeyMetadata,
  type KMSClient,
  ReEncryptCommand,
  ScheduleKeyDeletionCommand,
} from '@aws-sdk/client-kms';
import { expectKmsError, serverPerSuite, type TestServer } from '../support/server';
import { activeToken, describeEachToken, loadTokenModule, rfc5649Mechanism, tokenSlot } from '../support/test-tokens';
const DAY_SECONDS = 24 * 60 * 60;

/** Kept at module level for the life of the process: an unreferenced module is unloaded under running work. */
let pkcs11: pkcs11js.PKCS11 | undefined;

interface TokenObject {
  label: string;
  objectClass: number;
  keyType: number;
  valueLen: number;
  token: boolean;
  private: boolean;
  sensitive: boolean;
  extractable: boolean;
  alwaysSensitive: boolean;
  neverExtractable: boolean;
}

function ulong(value: Buffer): number {
  return value.length >= 8 ? Number(value.readBigUInt64LE(0)) : value.readUInt32LE(0);
}

function bool(value: Buffer): boolean {
  return value.length > 0 && value[0] !== 0;
}

/** The CKR_... name of a pkcs11js failure. */
function ckrOf(fn: () => unknown): string {
  try {
    fn();
  } catch (err) {
    // pkcs11js has no name for Cryptoki 2.40's CKR_ACTION_PROHIBITED (0x1B): "CKR_VENDOR_DEFINED:27".
    const message = String((err as Error).message);
    const code = (err as { code?: unknown }).code;
    if (code === 0x1b || /^CKR_VENDOR_DEFINED:27\b/.test(message)) return 'CKR_ACTION_PROHIBITED';
    const match = /CKR_[A-Z_0-9]+/.exec(message);
    return match ? match[0] : `non-PKCS#11 error: ${message}`;
  }
  return 'succeeded';
}

/** Opens a logged-in R/W session on the p11kms token, runs `fn`, closes the session. */
function withSession<T>(fn: (p: pkcs11js.PKCS11, session: Buffer) => T): T {
  const p = pkcs11!;
  const session = p.C_OpenSession(tokenSlot(p, activeToken()), pkcs11js.CKF_SERIAL_SESSION | pkcs11js.CKF_RW_SESSION);
  try {
    try {
      p.C_Login(session, pkcs11js.CKU_USER, activeToken().pin);
    } catch (err) {
      if (!/CKR_USER_ALREADY_LOGGED_IN/.test(String((err as Error).message))) throw err;
    }
    return fn(p, session);
  } finally {
    p.C_CloseSession(session);
  }
}

function findAll(p: pkcs11js.PKCS11, session: Buffer, template: pkcs11js.Template): Buffer[] {
  p.C_FindObjectsInit(session, template);
  try {
    const handles: Buffer[] = [];
    for (;;) {
      const batch = p.C_FindObjects(session, 100);
      handles.push(...batch);
      if (batch.length < 100) return handles;
    }
  } finally {
    p.C_FindObjectsFinal(session);
  }
}

function describeObject(p: pkcs11js.PKCS11, session: Buffer, handle: Buffer): TokenObject {
  const a = p.C_GetAttributeValue(session, handle, [
    { type: pkcs11js.CKA_LABEL },
    { type: pkcs11js.CKA_CLASS },
    { type: pkcs11js.CKA_KEY_TYPE },
    { type: pkcs11js.CKA_VALUE_LEN },
    { type: pkcs11js.CKA_TOKEN },
    { type: pkcs11js.CKA_PRIVATE },
    { type: pkcs11js.CKA_SENSITIVE },
    { type: pkcs11js.CKA_EXTRACTABLE },
    { type: pkcs11js.CKA_ALWAYS_SENSITIVE },
    { type: pkcs11js.CKA_NEVER_EXTRACTABLE },
  ]);
  const v = (i: number) => a[i].value as Buffer;
  return {
    label: v(0).toString('utf8'),
    objectClass: ulong(v(1)),
    keyType: ulong(v(2)),
    valueLen: ulong(v(3)),
    token: bool(v(4)),
    private: bool(v(5)),
    sensitive: bool(v(6)),
    extractable: bool(v(7)),
    alwaysSensitive: bool(v(8)),
    neverExtractable: bool(v(9)),
  };
}

/** The audit trail's signing key pair (issue #6), checked by the asymmetric and audit suites. */
const AUDIT_SIGNING_LABEL = 'p11kms-audit:signing:v1';

/** Every object the logged-in user can see in the token, except the audit signing key pair. */
function listObjects(): TokenObject[] {
  return withSession((p, session) =>
    findAll(p, session, [])
      .filter((h) => (p.C_GetAttributeValue(session, h, [{ type: pkcs11js.CKA_LABEL }])[0].value as Buffer).toString('utf8') !== AUDIT_SIGNING_LABEL)
      .map((h) => describeObject(p, session, h)),
  );
}

function labelOf(keyId: string): string {
  return `p11kms:${keyId}:v1`;
}

/** Files under `dir`, skipping the token directory. */
function filesUnder(dir: string, skip: string): string[] {
  const out: string[] = [];
  for (const entry of fs.readdirSync(dir, { withFileTypes: true })) {
    const full = path.join(dir, entry.name);
    if (full === skip) continue;
    if (entry.isDirectory()) out.push(...filesUnder(full, skip));
    else if (entry.isFile()) out.push(full);
  }
  return out;
}

describeEachToken('key custody in the PKCS#11 token', function (token) {
  this.timeout(60_000);
  let server: TestServer;
  let kms: KMSClient;
  const keys: KeyMetadata[] = [];
  /** Every plaintext and data key this suite has seen, to look for in files and logs. */
  const secrets: Array<{ what: string; bytes: Buffer }> = [];
  let previousConf: string | undefined;

  // Registered before the server's hooks, so that the token module is released before the server stops.
  after(function () {
    if (pkcs11) {
      try {
        pkcs11.C_Finalize();
      } catch {
        // Not initialised: nothing to release.
      }
    }
    if (previousConf === undefined) delete process.env.SOFTHSM2_CONF;
    else process.env.SOFTHSM2_CONF = previousConf;
  });
  const suite = serverPerSuite({ env: { P11KMS_LOG_LEVEL: 'trace' } }, (started, client) => ([server, kms] = [started, client]));
  before(async function () {
    for (let i = 0; i < 3; i++) keys.push((await kms.send(new CreateKeyCommand({ Description: `custody ${i}` }))).KeyMetadata!);

    for (const [i, key] of keys.entries()) {
      const plaintext = Buffer.concat([Buffer.from(`custody-plaintext-${i}-`), randomBytes(24)]);
      secrets.push({ what: `Encrypt plaintext ${i}`, bytes: plaintext });
      const enc = await kms.send(new EncryptCommand({ KeyId: key.KeyId, Plaintext: plaintext, EncryptionContext: { i: String(i) } }));
      const dec = await kms.send(new DecryptCommand({ CiphertextBlob: enc.CiphertextBlob, EncryptionContext: { i: String(i) } }));
      expect(Buffer.from(dec.Plaintext!).equals(plaintext)).to.equal(true);
      // A refused Decrypt goes through the error and logging paths too.
      await expectKmsError(kms.send(new DecryptCommand({ CiphertextBlob: enc.CiphertextBlob, EncryptionContext: { i: 'wrong' } })));

      const gdk = await kms.send(new GenerateDataKeyCommand({ KeyId: key.KeyId, KeySpec: 'AES_256' }));
      secrets.push({ what: `GenerateDataKey plaintext ${i}`, bytes: Buffer.from(gdk.Plaintext!) });

      for (const length of [7, 13, 32, 64]) {
        const wp = await kms.send(new GenerateDataKeyWithoutPlaintextCommand({ KeyId: key.KeyId, NumberOfBytes: length }));
        const moved = await kms.send(
          new ReEncryptCommand({ CiphertextBlob: wp.CiphertextBlob, DestinationKeyId: keys[(i + 1) % keys.length].KeyId }),
        );
        const dataKey = Buffer.from((await kms.send(new DecryptCommand({ CiphertextBlob: moved.CiphertextBlob }))).Plaintext!);
        expect(dataKey).to.have.length(length);
        // Only keys long enough to be unmistakable are searched for.
        if (length >= 13) secrets.push({ what: `GenerateDataKeyWithoutPlaintext key ${i}/${length}`, bytes: dataKey });
      }
    }

    previousConf = process.env.SOFTHSM2_CONF;
    pkcs11 = loadTokenModule(token, server.dataDir);
  });


  it('holds exactly one token object per key, labelled p11kms:<keyId>:v1, and nothing else', function () {
    const labels = listObjects().map((o) => o.label).sort();
    // Data keys made inside the token (GenerateDataKeyWithoutPlaintext, ReEncrypt, Decrypt) left nothing behind.
    expect(labels).to.deep.equal(keys.map((k) => labelOf(k.KeyId!)).sort());
  });

  it('stores every master key as a sensitive, never-extractable 32-byte AES token key', function () {
    const objects = listObjects();
    expect(objects).to.have.length(keys.length);
    for (const o of objects) {
      expect(o, o.label).to.deep.equal({
        label: o.label,
        objectClass: pkcs11js.CKO_SECRET_KEY,
        keyType: pkcs11js.CKK_AES,
        valueLen: 32,
        token: true,
        private: true,
        sensitive: true,
        extractable: false,
        alwaysSensitive: true,
        neverExtractable: true,
      });
    }
  });

  it('refuses to reveal or export a master key through PKCS#11', function () {
    withSession((p, session) => {
      for (const key of keys) {
        const [handle] = findAll(p, session, [{ type: pkcs11js.CKA_LABEL, value: labelOf(key.KeyId!) }]);
        expect(handle, labelOf(key.KeyId!)).to.be.instanceOf(Buffer);

        expect(ckrOf(() => p.C_GetAttributeValue(session, handle, [{ type: pkcs11js.CKA_VALUE }])), 'read CKA_VALUE').to.equal(
          'CKR_ATTRIBUTE_SENSITIVE',
        );
        const refusals = ['CKR_ATTRIBUTE_READ_ONLY', 'CKR_ACTION_PROHIBITED'];
        expect(ckrOf(() => p.C_SetAttributeValue(session, handle, [{ type: pkcs11js.CKA_EXTRACTABLE, value: true }])), 'set CKA_EXTRACTABLE').to.be.oneOf(
          refusals,
        );
        expect(ckrOf(() => p.C_SetAttributeValue(session, handle, [{ type: pkcs11js.CKA_SENSITIVE, value: false }])), 'clear CKA_SENSITIVE').to.be.oneOf(
          refusals,
        );
        // A copy cannot be made extractable either (a session object: nothing to clean up if it were),
        // and wrapping it under a key of our own is refused: unless the profile declares that
        // this token does both (NSS softokn), and then it must really do so.
        const exports = token.quirks.exportsNonExtractableKeys === true;
        const copy = ckrOf(() =>
          p.C_CopyObject(session, handle, [
            { type: pkcs11js.CKA_TOKEN, value: false },
            { type: pkcs11js.CKA_EXTRACTABLE, value: true },
          ]),
        );
        if (exports) expect(copy, 'copy as extractable (profile: exportsNonExtractableKeys)').to.equal('succeeded');
        else expect(copy, 'copy as extractable').to.be.oneOf(refusals);

        // Wrapping it under a key of our own is refused.
        const wrappingKey = p.C_GenerateKey(session, { mechanism: pkcs11js.CKM_AES_KEY_GEN }, [
          { type: pkcs11js.CKA_CLASS, value: pkcs11js.CKO_SECRET_KEY },
          { type: pkcs11js.CKA_KEY_TYPE, value: pkcs11js.CKK_AES },
          { type: pkcs11js.CKA_VALUE_LEN, value: 32 },
          { type: pkcs11js.CKA_TOKEN, value: false },
          { type: pkcs11js.CKA_WRAP, value: true },
        ]);
        try {
          expect(
            ckrOf(() => p.C_WrapKey(session, { mechanism: rfc5649Mechanism(token) }, wrappingKey, handle, Buffer.alloc(64))),
            'wrap the master key',
          ).to.equal(exports ? 'succeeded' : 'CKR_KEY_UNEXTRACTABLE');
        } finally {
          p.C_DestroyObject(session, wrappingKey);
        }

        // Nothing above changed the object.
        const after = describeObject(p, session, handle);
        expect([after.sensitive, after.extractable, after.neverExtractable], labelOf(key.KeyId!)).to.deep.equal([true, false, true]);
      }
    });
    // And no token object was added.
    expect(listObjects().filter((o) => o.token)).to.have.length(keys.length);
  });

  it('writes no plaintext or data key into the data directory or the service log', function () {
    const tokenDir = path.join(server.dataDir, 'tokens');
    const files = filesUnder(server.dataDir, tokenDir);
    const metadataFile = path.join(server.dataDir, 'metadata.json');
    expect(files).to.include(metadataFile);
    const metadata = fs.readFileSync(metadataFile, 'utf8');
    // The search is not vacuous: the store does hold these keys.
    for (const key of keys) expect(metadata).to.include(key.KeyId!);
    const log = server.stderr();
    expect(log.length, 'trace-level service log').to.be.greaterThan(0);

    const found: string[] = [];
    const contents = files.map((f) => ({ where: path.relative(server.dataDir, f), bytes: fs.readFileSync(f) }));
    contents.push({ where: 'service log (stderr)', bytes: Buffer.from(log, 'utf8') });
    for (const { what, bytes } of secrets) {
      const forms: Array<[string, Buffer]> = [
        ['raw', bytes],
        ['hex', Buffer.from(bytes.toString('hex'))],
        ['HEX', Buffer.from(bytes.toString('hex').toUpperCase())],
        ['base64', Buffer.from(bytes.toString('base64').replace(/=+$/, ''))],
        ['base64url', Buffer.from(bytes.toString('base64url'))],
      ];
      for (const { where, bytes: content } of contents) {
        for (const [form, needle] of forms) {
          if (content.includes(needle)) found.push(`${what} (${form}) in ${where}`);
        }
      }
    }
    expect(found).to.deep.equal([]);
  });

  it('keeps the token object of a key pending deletion, and destroys it when the deletion happens', async function () {
    const doomed = keys[2];
    const scheduled = await kms.send(new ScheduleKeyDeletionCommand({ KeyId: doomed.KeyId, PendingWindowInDays: 7 }));
    expect(scheduled.KeyState).to.equal('PendingDeletion');

    const pending = listObjects();
    expect(pending.map((o) => o.label).sort(), 'while pending deletion').to.deep.equal(keys.map((k) => labelOf(k.KeyId!)).sort());
    const kept = pending.find((o) => o.label === labelOf(doomed.KeyId!))!;
    expect([kept.sensitive, kept.extractable]).to.deep.equal([true, false]);

    // Eight days later (service clock and client signing clock alike) the waiting period is over:
    // the sweeper deletes the key when the service starts.
    const offset = 8 * DAY_SECONDS;
    kms.destroy();
    await suite.restart({ clockOffsetSeconds: offset });

    const gone = await expectKmsError(kms.send(new DescribeKeyCommand({ KeyId: doomed.KeyId })));
    expect(gone.name).to.equal('NotFoundException');
    expect(listObjects().map((o) => o.label).sort(), 'after deletion').to.deep.equal(
      keys.slice(0, 2).map((k) => labelOf(k.KeyId!)).sort(),
    );

    // The surviving keys still work.
    const enc = await kms.send(new EncryptCommand({ KeyId: keys[0].KeyId, Plaintext: Buffer.from('still here') }));
    const dec = await kms.send(new DecryptCommand({ CiphertextBlob: enc.CiphertextBlob }));
    expect(Buffer.from(dec.Plaintext!).toString()).to.equal('still here');
  });
});
