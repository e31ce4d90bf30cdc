/**
 * Session copies (profile setting `sessionCopies`, SoftHSM2's default profile): operations
 * compute with a per-process copy of each key that is a session object, never with a
 * readable or exportable one, and the token keeps exactly one stored object per key.
 * Checked on the real token through p11kms's own custody layer and raw PKCS#11 calls.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { createPublicKey, verify } from 'node:crypto';
import { expect } from 'chai';
import pino from 'pino';
import * as pkcs11js from 'pkcs11js';
import { loadConfig, loadHsmProfile } from '../../src/config/config';
import { KeyCustody, materialNaming, type NewMaterialRef } from '../../src/custody/key-custody';
import { aesKeyTemplate, HELD_IN_TOKEN } from '../../src/custody/key-templates';
import { Token } from '../../src/custody/token';
import { newCreationId } from '../../src/custody/token-objects';

function ckrOf(fn: () => unknown): string {
  try {
    fn();
  } catch (err) {
    return String((err as Error).message).split(':')[0];
  }
  return 'succeeded';
}

describe('session copies of token keys (profile sessionCopies)', function () {
  this.timeout(60_000);
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'p11kms-session-copies-'));
  let token: Token;
  let custody: KeyCustody;
  let versions = 0;
  const newRef = (): NewMaterialRef => ({ keyId: '0a0b0c0d-1111-2222-3333-444455556666', version: ++versions, creationId: newCreationId() });
  const bools = (handle: Buffer, types: number[]) =>
    token.run('read', (session) => token.pkcs11.C_GetAttributeValue(session, handle, types.map((type) => ({ type }))).map((a) => Boolean((a.value as Buffer)[0])));
  const handles = (ref: NewMaterialRef, objectClass: number) =>
    token.run('find', (session) => ({ stored: token.lookup.findCreation(session, ref.creationId, objectClass)!, used: token.lookup.findForUse(session, ref.creationId, objectClass)! }));

  before(() => {
    // The SoftHSM2 profile with the setting switched on (it is off by default: README, HSM profiles).
    const profile = { ...loadHsmProfile(loadConfig({ env: { P11KMS_DATA_DIR: dataDir } })), sessionCopies: true };
    token = Token.open(profile, dataDir, pino({ level: 'silent' }));
    custody = new KeyCustody(token);
  });

  after(() => {
    token.close();
    fs.rmSync(dataDir, { recursive: true, force: true });
  });

  it('encrypts with a session copy that is not stored, sensitive, never extractable and frozen', async () => {
    const ref = newRef();
    await custody.generateKey(ref, 'SYMMETRIC_DEFAULT', 'ENCRYPT_DECRYPT');
    const aad = Buffer.from('context');
    const { iv, sealed } = await custody.symmetric.encrypt(ref, aad, Buffer.from('plaintext'));
    expect((await custody.symmetric.decrypt(ref, iv, aad, sealed)).toString()).to.equal('plaintext');

    const { stored, used } = await handles(ref, pkcs11js.CKO_SECRET_KEY);
    expect(used.equals(stored), 'operations use another object than the stored one').to.equal(false);
    const types = [pkcs11js.CKA_TOKEN, pkcs11js.CKA_SENSITIVE, pkcs11js.CKA_EXTRACTABLE, pkcs11js.CKA_MODIFIABLE, pkcs11js.CKA_NEVER_EXTRACTABLE, pkcs11js.CKA_ALWAYS_SENSITIVE];
    expect(await bools(used, types), 'copy: token, sensitive, extractable, modifiable, never extractable, always sensitive').to.deep.equal([false, true, false, false, true, true]);
    expect(await bools(stored, types), 'stored key: modifiable so that it can be copied').to.deep.equal([true, true, false, true, true, true]);

    await token.run('try to take the key out', (session) => {
      const p = token.pkcs11;
      expect(ckrOf(() => p.C_GetAttributeValue(session, used, [{ type: pkcs11js.CKA_VALUE }])), 'read the copy').to.equal('CKR_ATTRIBUTE_SENSITIVE');
      expect(ckrOf(() => p.C_SetAttributeValue(session, stored, [{ type: pkcs11js.CKA_EXTRACTABLE, value: true }])), 'make the stored key extractable').to.equal('CKR_ATTRIBUTE_READ_ONLY');
      expect(ckrOf(() => p.C_SetAttributeValue(session, stored, [{ type: pkcs11js.CKA_SENSITIVE, value: false }])), 'make the stored key readable').to.equal('CKR_ATTRIBUTE_READ_ONLY');
      expect(ckrOf(() => p.C_CopyObject(session, stored, [{ type: pkcs11js.CKA_TOKEN, value: false }, { type: pkcs11js.CKA_EXTRACTABLE, value: true }])), 'an extractable copy').to.equal('CKR_ATTRIBUTE_READ_ONLY');
      expect(ckrOf(() => p.C_SetAttributeValue(session, used, [{ type: pkcs11js.CKA_DERIVE, value: true }])), 'change the copy').to.not.equal('succeeded');
    });
    // The copy is not a stored object: the token lists exactly the key.
    expect((await custody.objects.listObjects()).filter((o) => o.creationId === ref.creationId)).to.have.length(1);
  });

  it('signs and computes MACs with session copies, verifiable with the stored public key', async () => {
    const ec = newRef();
    await custody.generateKey(ec, 'ECC_NIST_P256', 'SIGN_VERIFY');
    const message = Buffer.from('message');
    const signature = await custody.signatures.sign(ec, 'ECC_NIST_P256', 'ECDSA_SHA_256', 'RAW', message);
    const publicKey = createPublicKey({ key: await custody.asymmetric.publicKey(ec, 'ECC_NIST_P256'), format: 'der', type: 'spki' });
    expect(verify('sha256', message, publicKey, signature)).to.equal(true);
    const pair = await handles(ec, pkcs11js.CKO_PRIVATE_KEY);
    expect(pair.used.equals(pair.stored)).to.equal(false);
    expect(await bools(pair.used, [pkcs11js.CKA_TOKEN, pkcs11js.CKA_SENSITIVE, pkcs11js.CKA_EXTRACTABLE])).to.deep.equal([false, true, false]);

    const hmac = newRef();
    await custody.generateKey(hmac, 'HMAC_256', 'GENERATE_VERIFY_MAC');
    const mac = await custody.signatures.mac(hmac, 'HMAC_256', message);
    expect(await custody.signatures.verifyMac(hmac, 'HMAC_256', message, mac)).to.equal(true);
    const secret = await handles(hmac, pkcs11js.CKO_SECRET_KEY);
    expect(secret.used.equals(secret.stored)).to.equal(false);
  });

  it('destroys the copy with the material: the key cannot be used afterwards', async () => {
    const ref = newRef();
    await custody.generateKey(ref, 'SYMMETRIC_DEFAULT', 'ENCRYPT_DECRYPT');
    await custody.symmetric.encrypt(ref, Buffer.alloc(0), Buffer.from('x'));
    const { used } = await handles(ref, pkcs11js.CKO_SECRET_KEY);
    expect(await custody.objects.destroyCreation(ref.creationId)).to.equal(1);
    await token.run('look for the copy', (session) => {
      expect(ckrOf(() => token.pkcs11.C_GetAttributeValue(session, used, [{ type: pkcs11js.CKA_TOKEN }]))).to.equal('CKR_OBJECT_HANDLE_INVALID');
    });
    let failure: unknown;
    await custody.symmetric.encrypt(ref, Buffer.alloc(0), Buffer.from('x')).catch((err: unknown) => (failure = err));
    expect(failure, 'encrypt with destroyed material').to.be.instanceOf(Error);
  });

  it('uses a frozen key (made before the setting) from its token object', async () => {
    const ref = newRef();
    await token.run('make a frozen key', (session) => token.pkcs11.C_GenerateKey(session, { mechanism: pkcs11js.CKM_AES_KEY_GEN }, aesKeyTemplate(materialNaming(ref), true, HELD_IN_TOKEN)));
    const aad = Buffer.from('frozen');
    const { iv, sealed } = await custody.symmetric.encrypt(ref, aad, Buffer.from('still works'));
    expect((await custody.symmetric.decrypt(ref, iv, aad, sealed)).toString()).to.equal('still works');
    const { stored, used } = await handles(ref, pkcs11js.CKO_SECRET_KEY);
    expect(used.equals(stored), 'no copy of a frozen key').to.equal(true);
  });
});
