import { createDecipheriv, createHmac, createPublicKey, generateKeyPairSync, randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import {
  type AlgorithmSpec,
  CreateAliasCommand,
  CreateKeyCommand,
  DecryptCommand,
  DeleteImportedKeyMaterialCommand,
  DescribeKeyCommand,
  DisableKeyCommand,
  EnableKeyCommand,
  EnableKeyRotationCommand,
  EncryptCommand,
  GetKeyRotationStatusCommand,
  GenerateMacCommand,
  GetParametersForImportCommand,
  ImportKeyMaterialCommand,
  type KMSClient,
  ListKeyRotationsCommand,
  RotateKeyOnDemandCommand,
  type WrappingKeySpec,
} from '@aws-sdk/client-kms';
import { expect } from 'chai';
import { type InProcessService, type ManualClock, openInProcessService } from '../support/in-process';
import { MaterialSweeper } from '../../src/lifecycle/material-sweeper';
import { reconcile } from '../../src/lifecycle/reconcile';
import type { RequestContext, Services } from '../../src/operations';
import { createKey } from '../../src/operations/create-key';
import { deleteImportedKeyMaterial } from '../../src/operations/delete-imported-key-material';
import { describeKey } from '../../src/operations/describe-key';
import { encrypt } from '../../src/operations/encrypt';
import { getParametersForImport } from '../../src/operations/get-parameters-for-import';
import { importKeyMaterial } from '../../src/operations/import-key-material';
import { JsonFileStore } from '../../src/store/json/json-file-store';
import { settled } from '../support/race-kit';
import { createdKey, expectKmsError, serverPerSuite, type TestServer } from '../support/server';
import { listTokenObjects } from '../support/token-tool';
import { importWrapped, wrapMaterial } from '../support/wrap-material';

const DAY_MS = 24 * 60 * 60 * 1000;
// RSAES_PKCS1_V1_5 is refused (below); the Huawei dialect still imports with it (huawei-lifecycle.test.ts).
const ALGORITHMS: AlgorithmSpec[] = ['RSAES_OAEP_SHA_1', 'RSAES_OAEP_SHA_256', 'RSA_AES_KEY_WRAP_SHA_1', 'RSA_AES_KEY_WRAP_SHA_256'];

/** Opens a p11kms symmetric blob with node:crypto given the key material (docs/ciphertext-format.md). */
function openBlobWithMaterial(blob: Buffer, material: Buffer, context: Record<string, string>): Buffer {
  const header = blob.subarray(0, 24);
  const iv = blob.subarray(24, 36);
  const body = blob.subarray(36, blob.length - 16);
  const tag = blob.subarray(blob.length - 16);
  const pairs = Object.entries(context).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  const u32 = (n: number) => {
    const b = Buffer.alloc(4);
    b.writeUInt32BE(n);
    return b;
  };
  const parts = [Buffer.from('p11kms/ciphertext/v1\0'), header, u32(pairs.length)];
  for (const [k, v] of pairs) parts.push(u32(Buffer.byteLength(k)), Buffer.from(k), u32(Buffer.byteLength(v)), Buffer.from(v));
  const decipher = createDecipheriv('aes-256-gcm', material, iv);
  decipher.setAAD(Buffer.concat(parts));
  decipher.setAuthTag(tag);
  return Buffer.concat([decipher.update(body), decipher.final()]);
}

describe('import (real server, real token)', function () {
  // Every GetParametersForImport makes an RSA wrapping key pair in the token (up to 4096 bits);
  // on a busy machine one test's generations take longer than mocha's 30 s default. The
  // tests wait for no time: this only bounds a hung one.
  this.timeout(120_000);
  let server: TestServer;
  let kms: KMSClient;
  const suite = serverPerSuite({}, (started, client) => ([server, kms] = [started, client]));
  const externalKey = (params: Record<string, unknown> = {}) => createdKey(kms, { Origin: 'EXTERNAL', ...params });

  const importInto = (keyId: string, material: Buffer, algorithm: AlgorithmSpec = 'RSA_AES_KEY_WRAP_SHA_1', spec: WrappingKeySpec = 'RSA_2048', extra: Record<string, unknown> = {}) =>
    importWrapped(kms, keyId, material, { algorithm, spec, extra });

  it('EXTERNAL keys: automatic rotation is refused with the origin message, the status is false', async () => {
    const { keyId, arn } = await externalKey();
    await importInto(keyId, randomBytes(32));
    const err = await expectKmsError(kms.send(new EnableKeyRotationCommand({ KeyId: keyId })));
    expect([err.name, err.message]).to.deep.equal(['UnsupportedOperationException', `${arn} origin is EXTERNAL which is not valid for this operation.`]);
    expect((await kms.send(new GetKeyRotationStatusCommand({ KeyId: keyId }))).KeyRotationEnabled).to.equal(false);
    const rotations = await kms.send(new ListKeyRotationsCommand({ KeyId: keyId, IncludeKeyMaterial: 'ALL_KEY_MATERIAL' }));
    expect(rotations.Rotations![0]).to.include({ ImportState: 'IMPORTED', KeyMaterialState: 'CURRENT', ExpirationModel: 'KEY_MATERIAL_DOES_NOT_EXPIRE' });
  });

  it('CreateKey Origin EXTERNAL is PendingImport with no material; Encrypt says pending import', async () => {
    const { KeyMetadata } = await kms.send(new CreateKeyCommand({ Origin: 'EXTERNAL' }));
    expect(KeyMetadata).to.include({ Enabled: false, KeyState: 'PendingImport', Origin: 'EXTERNAL' });
    expect(KeyMetadata!.CurrentKeyMaterialId).to.equal(undefined);
    const err = await expectKmsError(kms.send(new EncryptCommand({ KeyId: KeyMetadata!.KeyId, Plaintext: Buffer.from('x') })));
    expect(err.name).to.equal('KMSInvalidStateException');
    expect(err.message).to.equal(`${KeyMetadata!.Arn} is pending import.`);
  });

  it('GetParametersForImport: RSA wrapping keys of every size, ARN, 24 h validity; AWS_KMS keys are refused', async () => {
    const { keyId, arn } = await externalKey();
    for (const spec of ['RSA_2048', 'RSA_3072', 'RSA_4096'] as WrappingKeySpec[]) {
      const before = Date.now();
      const out = await kms.send(new GetParametersForImportCommand({ KeyId: keyId, WrappingAlgorithm: 'RSAES_OAEP_SHA_256', WrappingKeySpec: spec }));
      expect(out.KeyId).to.equal(arn);
      const pub = createPublicKey({ key: Buffer.from(out.PublicKey!), format: 'der', type: 'spki' });
      expect(pub.asymmetricKeyDetails!.modulusLength).to.equal(Number(spec.slice(4)));
      expect(out.ParametersValidTo!.getTime()).to.be.within(before + DAY_MS - 2000, Date.now() + DAY_MS + 1000);
      expect(out.ImportToken!.length).to.be.greaterThan(32);
    }
    const { KeyMetadata } = await kms.send(new CreateKeyCommand({}));
    const err = await expectKmsError(kms.send(new GetParametersForImportCommand({ KeyId: KeyMetadata!.KeyId, WrappingAlgorithm: 'RSAES_OAEP_SHA_1', WrappingKeySpec: 'RSA_2048' })));
    expect(err.name).to.equal('UnsupportedOperationException');
    expect(err.message).to.equal(`${KeyMetadata!.Arn} origin is AWS_KMS which is not valid for this operation.`);
  });

  it('RSAES_PKCS1_V1_5 wrapping: ValidationException from GetParametersForImport for every key type (AWS refuses it since 10 October 2023), and no wrapping key is left in the token', async () => {
    const symmetric = await externalKey();
    const hmac = await externalKey({ KeySpec: 'HMAC_256', KeyUsage: 'GENERATE_VERIFY_MAC' });
    const before = listTokenObjects(server.dataDir).filter((o) => o.label.startsWith('p11kms-import:')).length;
    for (const keyId of [symmetric.keyId, hmac.keyId]) {
      for (const spec of ['RSA_2048', 'RSA_4096'] as WrappingKeySpec[]) {
        const err = await expectKmsError(kms.send(new GetParametersForImportCommand({ KeyId: keyId, WrappingAlgorithm: 'RSAES_PKCS1_V1_5', WrappingKeySpec: spec })));
        expect(err.name).to.equal('ValidationException');
        expect(err.message).to.contain('RSAES_PKCS1_V1_5').and.contain('RSAES_OAEP_SHA_1');
      }
      expect((await kms.send(new DescribeKeyCommand({ KeyId: keyId }))).KeyMetadata!.KeyState).to.equal('PendingImport');
    }
    expect(listTokenObjects(server.dataDir).filter((o) => o.label.startsWith('p11kms-import:')).length).to.equal(before);
  });

  for (const algorithm of ALGORITHMS) {
    it(`symmetric material imported with ${algorithm}: p11kms ciphertexts open with node:crypto and the known material`, async () => {
      const material = randomBytes(32);
      const { keyId, arn } = await externalKey();
      const imported = await importInto(keyId, material, algorithm, algorithm.startsWith('RSA_AES') ? 'RSA_3072' : 'RSA_2048');
      expect(imported.KeyId).to.equal(arn);
      expect(imported.KeyMaterialId).to.match(/^[0-9a-f]{64}$/);
      const described = await kms.send(new DescribeKeyCommand({ KeyId: keyId }));
      expect(described.KeyMetadata).to.include({ KeyState: 'Enabled', Enabled: true, ExpirationModel: 'KEY_MATERIAL_DOES_NOT_EXPIRE', CurrentKeyMaterialId: imported.KeyMaterialId });
      const context = { purpose: 'import-proof', alg: algorithm };
      const { CiphertextBlob } = await kms.send(new EncryptCommand({ KeyId: keyId, Plaintext: Buffer.from(`secret via ${algorithm}`), EncryptionContext: context }));
      expect(openBlobWithMaterial(Buffer.from(CiphertextBlob!), material, context).toString()).to.equal(`secret via ${algorithm}`);
      const decrypted = await kms.send(new DecryptCommand({ CiphertextBlob, EncryptionContext: context }));
      expect(decrypted.KeyMaterialId).to.equal(imported.KeyMaterialId);
    });
  }

  for (const [spec, hash, length] of [['HMAC_224', 'sha224', 28], ['HMAC_256', 'sha256', 32], ['HMAC_384', 'sha384', 48], ['HMAC_512', 'sha512', 64]] as const) {
    it(`${spec} material imported (RSA_AES_KEY_WRAP_SHA_256 and RSAES_OAEP_SHA_1) gives the MAC node:crypto computes`, async () => {
      for (const algorithm of ['RSA_AES_KEY_WRAP_SHA_256', 'RSAES_OAEP_SHA_1'] as AlgorithmSpec[]) {
        const material = randomBytes(length);
        const { keyId } = await externalKey({ KeySpec: spec, KeyUsage: 'GENERATE_VERIFY_MAC' });
        await importInto(keyId, material, algorithm);
        const message = Buffer.from(`message for ${spec}`);
        const { Mac } = await kms.send(new GenerateMacCommand({ KeyId: keyId, MacAlgorithm: `HMAC_SHA_${spec.slice(5)}` as never, Message: message }));
        expect(Buffer.from(Mac!).equals(createHmac(hash, material).update(message).digest()), algorithm).to.equal(true);
      }
    });
  }

  it('re-import: the same material is accepted (any algorithm), different material is IncorrectKeyMaterialException; DeleteImportedKeyMaterial makes the key PendingImport and keeps CurrentKeyMaterialId (again: no effect)', async () => {
    const material = randomBytes(32);
    const { keyId, arn } = await externalKey();
    const first = await importInto(keyId, material, 'RSAES_OAEP_SHA_1');
    const { CiphertextBlob } = await kms.send(new EncryptCommand({ KeyId: keyId, Plaintext: Buffer.from('kept') }));
    const deleted = await kms.send(new DeleteImportedKeyMaterialCommand({ KeyId: keyId }));
    expect(deleted).to.include({ KeyId: arn, KeyMaterialId: first.KeyMaterialId });
    const after = (await kms.send(new DescribeKeyCommand({ KeyId: keyId }))).KeyMetadata!;
    expect(after).to.include({ KeyState: 'PendingImport', Enabled: false, CurrentKeyMaterialId: first.KeyMaterialId });
    const pending = await expectKmsError(kms.send(new DecryptCommand({ CiphertextBlob })));
    expect(pending.name).to.equal('KMSInvalidStateException');
    expect(pending.message).to.equal(`${arn} is pending import.`);
    // AWS's key-state table: DeleteImportedKeyMaterial on a key pending import has no effect.
    expect(await kms.send(new DeleteImportedKeyMaterialCommand({ KeyId: keyId }))).to.include({ KeyId: arn, KeyMaterialId: first.KeyMaterialId });
    expect((await kms.send(new DescribeKeyCommand({ KeyId: keyId }))).KeyMetadata).to.include({ KeyState: 'PendingImport' });

    const wrong = await expectKmsError(importInto(keyId, randomBytes(32), 'RSA_AES_KEY_WRAP_SHA_256'));
    expect(wrong.name).to.equal('IncorrectKeyMaterialException');
    const same = await importInto(keyId, material, 'RSA_AES_KEY_WRAP_SHA_256', 'RSA_4096');
    expect(same.KeyMaterialId).to.equal(first.KeyMaterialId);
    expect(Buffer.from((await kms.send(new DecryptCommand({ CiphertextBlob }))).Plaintext!).toString()).to.equal('kept');
    // Re-importing while present changes the expiration only.
    await importInto(keyId, material, 'RSAES_OAEP_SHA_256', 'RSA_2048', { ExpirationModel: 'KEY_MATERIAL_EXPIRES', ValidTo: new Date(Date.now() + 30 * DAY_MS) });
    expect((await kms.send(new DescribeKeyCommand({ KeyId: keyId }))).KeyMetadata).to.include({ ExpirationModel: 'KEY_MATERIAL_EXPIRES' });
  });

  it('a Disabled key whose imported material is deleted and imported again stays Disabled', async () => {
    const material = randomBytes(32);
    const { keyId } = await externalKey();
    await importInto(keyId, material);
    await kms.send(new DisableKeyCommand({ KeyId: keyId }));
    await kms.send(new DeleteImportedKeyMaterialCommand({ KeyId: keyId }));
    expect((await kms.send(new DescribeKeyCommand({ KeyId: keyId }))).KeyMetadata).to.include({ KeyState: 'PendingImport', Enabled: false });
    await importInto(keyId, material);
    expect((await kms.send(new DescribeKeyCommand({ KeyId: keyId }))).KeyMetadata).to.include({ KeyState: 'Disabled', Enabled: false });
    await kms.send(new EnableKeyCommand({ KeyId: keyId }));
    await kms.send(new DeleteImportedKeyMaterialCommand({ KeyId: keyId }));
    await importInto(keyId, material);
    expect((await kms.send(new DescribeKeyCommand({ KeyId: keyId }))).KeyMetadata).to.include({ KeyState: 'Enabled', Enabled: true });
  });

  it('imported keys rotate on demand only with new imported material, which then becomes current; old ciphertexts still decrypt', async () => {
    const { keyId, arn } = await externalKey();
    const m1 = randomBytes(32);
    const m2 = randomBytes(32);
    await importInto(keyId, m1);
    const { CiphertextBlob: old } = await kms.send(new EncryptCommand({ KeyId: keyId, Plaintext: Buffer.from('one') }));
    const none = await expectKmsError(kms.send(new RotateKeyOnDemandCommand({ KeyId: keyId })));
    expect(none.name).to.equal('KMSInvalidStateException');
    expect(none.message).to.equal(`No available key material pending rotation for the key: ${arn}.`);
    const second = await importInto(keyId, m2, 'RSAES_OAEP_SHA_1', 'RSA_2048', { ImportType: 'NEW_KEY_MATERIAL', KeyMaterialDescription: 'second' });
    const third = await expectKmsError(importInto(keyId, randomBytes(32), 'RSAES_OAEP_SHA_1', 'RSA_2048', { ImportType: 'NEW_KEY_MATERIAL' }));
    expect(third.name).to.equal('KMSInvalidStateException');
    expect(third.message).to.match(new RegExp(`^New key material \\(id: [0-9a-f]{64}\\) cannot be imported into KMS key ${keyId}, because another key material \\(id: ${second.KeyMaterialId}\\) is pending rotation\\.$`));
    const listed = await kms.send(new ListKeyRotationsCommand({ KeyId: keyId, IncludeKeyMaterial: 'ALL_KEY_MATERIAL' }));
    expect(listed.Rotations![1]).to.include({ KeyMaterialId: second.KeyMaterialId, KeyMaterialState: 'PENDING_ROTATION', ImportState: 'IMPORTED', KeyMaterialDescription: 'second' });
    await kms.send(new RotateKeyOnDemandCommand({ KeyId: keyId }));
    const { CiphertextBlob: fresh, KeyId } = await kms.send(new EncryptCommand({ KeyId: keyId, Plaintext: Buffer.from('two') }));
    expect(KeyId).to.equal(arn);
    expect(openBlobWithMaterial(Buffer.from(fresh!), m2, {}).toString()).to.equal('two');
    expect(Buffer.from((await kms.send(new DecryptCommand({ CiphertextBlob: old }))).Plaintext!).toString()).to.equal('one');
  });

  it('error paths: import tokens (other key, corrupted, other wrapping algorithm), ValidTo rules, undecryptable material, AWS_KMS keys, unsupported key specs', async () => {
    const a = await externalKey();
    const b = await externalKey();
    const material = randomBytes(32);
    const pa = await kms.send(new GetParametersForImportCommand({ KeyId: a.keyId, WrappingAlgorithm: 'RSAES_OAEP_SHA_1', WrappingKeySpec: 'RSA_2048' }));
    const wrapped = wrapMaterial(pa.PublicKey!, 'RSAES_OAEP_SHA_1', material);
    const send = (extra: Record<string, unknown>) =>
      kms.send(new ImportKeyMaterialCommand({ KeyId: a.keyId, ImportToken: pa.ImportToken, EncryptedKeyMaterial: wrapped, ExpirationModel: 'KEY_MATERIAL_DOES_NOT_EXPIRE', ...extra }));
    expect((await expectKmsError(send({ KeyId: b.keyId }))).name).to.equal('InvalidImportTokenException');
    const corrupted = Buffer.from(pa.ImportToken!);
    corrupted[corrupted.length - 1] ^= 1;
    expect((await expectKmsError(send({ ImportToken: corrupted }))).name).to.equal('InvalidImportTokenException');
    expect((await expectKmsError(send({ EncryptedKeyMaterial: wrapMaterial(pa.PublicKey!, 'RSAES_OAEP_SHA_256', material) }))).name).to.equal('InvalidCiphertextException');
    expect((await expectKmsError(send({ EncryptedKeyMaterial: randomBytes(256) }))).name).to.equal('InvalidCiphertextException');
    const noValidTo = await expectKmsError(send({ ExpirationModel: 'KEY_MATERIAL_EXPIRES' }));
    expect(noValidTo.name).to.equal('ValidationException');
    expect(noValidTo.message).to.equal('A validTo date must be set if the ExpirationModel is KEY_MATERIAL_EXPIRES');
    expect((await expectKmsError(send({ ExpirationModel: 'KEY_MATERIAL_EXPIRES', ValidTo: new Date(Date.now() + 400 * DAY_MS) }))).name).to.equal('ValidationException');
    expect((await expectKmsError(send({ ExpirationModel: 'KEY_MATERIAL_EXPIRES', ValidTo: new Date(Date.now() - 1000) }))).name).to.equal('ValidationException');
    expect((await expectKmsError(send({ ValidTo: new Date(Date.now() + DAY_MS) }))).name).to.equal('ValidationException');
    for (const length of [0, 16, 31, 33]) {
      const wrongLength = await expectKmsError(send({ EncryptedKeyMaterial: wrapMaterial(pa.PublicKey!, 'RSAES_OAEP_SHA_1', randomBytes(length)) }));
      expect([wrongLength.name, wrongLength.$metadata?.httpStatusCode, wrongLength.message], `${length} bytes`).to.deep.equal([
        'ValidationException',
        400,
        'The key material is not of a length key spec SYMMETRIC_DEFAULT accepts.',
      ]);
    }
    const hmac = await externalKey({ KeySpec: 'HMAC_256', KeyUsage: 'GENERATE_VERIFY_MAC' });
    const emptyHmac = await expectKmsError(importInto(hmac.keyId, Buffer.alloc(0), 'RSAES_OAEP_SHA_1'));
    expect([emptyHmac.name, emptyHmac.$metadata?.httpStatusCode]).to.deep.equal(['ValidationException', 400]);
    expect((await send({})).KeyMaterialId).to.match(/^[0-9a-f]{64}$/);

    const { KeyMetadata } = await kms.send(new CreateKeyCommand({}));
    const awsKms = await expectKmsError(kms.send(new ImportKeyMaterialCommand({ KeyId: KeyMetadata!.KeyId, ImportToken: pa.ImportToken, EncryptedKeyMaterial: wrapped })));
    expect(awsKms.name).to.equal('UnsupportedOperationException');
    expect(awsKms.message).to.equal(`${KeyMetadata!.Arn} origin is AWS_KMS which is not valid for this operation.`);
    const del = await expectKmsError(kms.send(new DeleteImportedKeyMaterialCommand({ KeyId: KeyMetadata!.KeyId })));
    expect(del.message).to.equal(`${KeyMetadata!.Arn} origin is AWS_KMS which is not valid for this operation.`);
    const edwards = await expectKmsError(kms.send(new CreateKeyCommand({ Origin: 'EXTERNAL', KeySpec: 'ECC_NIST_EDWARDS25519', KeyUsage: 'SIGN_VERIFY' })));
    expect(edwards.name).to.equal('UnsupportedOperationException');
  });

  it('a seed file creates keys with fixed ids, aliases and imported material at start-up, idempotently', async () => {
    const material = randomBytes(32);
    const hmacMaterial = randomBytes(32);
    const seedFile = path.join(server.dataDir, 'seed.json');
    const ids = ['11111111-1111-4111-8111-111111111111', '22222222-2222-4222-8222-222222222222', '33333333-3333-4333-8333-333333333333'];
    fs.writeFileSync(
      seedFile,
      JSON.stringify({
        keys: [
          { keyId: ids[0], description: 'generated', aliases: ['alias/seed-generated'], tags: [{ TagKey: 'env', TagValue: 'ci' }] },
          { keyId: ids[1], material: material.toString('hex'), aliases: ['alias/seed-imported'] },
          { keyId: ids[2], keySpec: 'HMAC_256', keyUsage: 'GENERATE_VERIFY_MAC', material: `base64:${hmacMaterial.toString('base64')}` },
        ],
      }),
    );
    for (let round = 0; round < 2; round++) {
      await suite.restart({ env: { P11KMS_SEED_FILE: seedFile } });
      expect((await kms.send(new DescribeKeyCommand({ KeyId: 'alias/seed-generated' }))).KeyMetadata).to.include({ KeyId: ids[0], Description: 'generated', Origin: 'AWS_KMS' });
      const { CiphertextBlob } = await kms.send(new EncryptCommand({ KeyId: 'alias/seed-imported', Plaintext: Buffer.from('seeded') }));
      expect(openBlobWithMaterial(Buffer.from(CiphertextBlob!), material, {}).toString()).to.equal('seeded');
      const { Mac } = await kms.send(new GenerateMacCommand({ KeyId: ids[2], MacAlgorithm: 'HMAC_SHA_256', Message: Buffer.from('m') }));
      expect(Buffer.from(Mac!).equals(createHmac('sha256', hmacMaterial).update('m').digest())).to.equal(true);
    }
    // Deleted material comes back from the seed at the next start.
    await kms.send(new DeleteImportedKeyMaterialCommand({ KeyId: ids[1] }));
    await suite.restart({ env: { P11KMS_SEED_FILE: seedFile } });
    expect((await kms.send(new DescribeKeyCommand({ KeyId: ids[1] }))).KeyMetadata!.KeyState).to.equal('Enabled');
    await expectKmsError(kms.send(new CreateAliasCommand({ AliasName: 'alias/seed-imported', TargetKeyId: ids[0] })));
    await suite.restart({ env: {} });
  });
});

describe('imported material expiry (running service, moving clock)', function () {
  let harness: InProcessService;
  let services: Services;
  let store: JsonFileStore;
  let ctx: RequestContext;
  let clock: ManualClock;
  let sweeper: MaterialSweeper;
  const events: Array<{ eventName: string; eventType: string }> = [];

  before(async () => {
    harness = await openInProcessService('import-expiry', Date.now());
    ({ services, store, ctx, clock } = harness);
    sweeper = new MaterialSweeper(services, 25, { record: async (e) => void events.push(e) });
    sweeper.start();
  });

  after(async () => {
    await sweeper?.stop();
    await harness?.close();
  });

  it('start-up reconciliation destroys import wrapping keys and imported material the store does not list', async () => {
    const { KeyMetadata } = await createKey({ Origin: 'EXTERNAL' }, ctx, services);
    const keyId = KeyMetadata!.KeyId;
    // A crash after the token write and before the store write leaves an unlisted wrapping pair.
    await services.custody.importer.generateWrappingKey({ keyId, wrappingId: 'ab'.repeat(16) }, 'RSA_2048');
    const params = await getParametersForImport({ KeyId: keyId, WrappingAlgorithm: 'RSAES_OAEP_SHA_1', WrappingKeySpec: 'RSA_2048' }, ctx, services);
    const report = await reconcile(services);
    expect(report.wrappingKeysDestroyed).to.deep.equal([`${keyId}:${'ab'.repeat(16)}`]);
    // The listed one survives and still imports.
    const material = randomBytes(32);
    await importKeyMaterial({ KeyId: keyId, ImportToken: Buffer.from(params.ImportToken!), EncryptedKeyMaterial: wrapMaterial(params.PublicKey!, 'RSAES_OAEP_SHA_1', material), ExpirationModel: 'KEY_MATERIAL_DOES_NOT_EXPIRE' }, ctx, services);
    // Material the store marks PENDING_IMPORT (deleted, crash before the token object was destroyed) is destroyed too.
    const key = (await store.getKey({ keyId, region: ctx.scope.region }))!;
    await store.transact((tx) => tx.putKey({ ...key, keyState: 'PendingImport', materials: key.materials.map((m) => ({ ...m, imported: { ...m.imported!, importState: 'PENDING_IMPORT' as const } })) }));
    expect((await reconcile(services)).orphansDestroyed).to.deep.equal([`${keyId}:v1`]);
    expect(await services.custody.objects.exists({ keyId, version: 1 })).to.equal(false);
  });

  it('imported private keys: a sensitive, non-extractable token pair; DeleteImportedKeyMaterial and reconciliation destroy both objects', async () => {
    const { KeyMetadata } = await createKey({ Origin: 'EXTERNAL', KeySpec: 'ECC_NIST_P256', KeyUsage: 'SIGN_VERIFY' }, ctx, services);
    const keyId = KeyMetadata!.KeyId;
    const privateKey = generateKeyPairSync('ec', { namedCurve: 'prime256v1' }).privateKey;
    const importOnce = async () => {
      const params = await getParametersForImport({ KeyId: keyId, WrappingAlgorithm: 'RSA_AES_KEY_WRAP_SHA_1', WrappingKeySpec: 'RSA_2048' }, ctx, services);
      const wrapped = wrapMaterial(params.PublicKey!, 'RSA_AES_KEY_WRAP_SHA_1', privateKey.export({ type: 'pkcs8', format: 'der' }));
      await importKeyMaterial({ KeyId: keyId, ImportToken: Buffer.from(params.ImportToken!), EncryptedKeyMaterial: wrapped, ExpirationModel: 'KEY_MATERIAL_DOES_NOT_EXPIRE' }, ctx, services);
    };
    await importOnce();
    expect(await services.custody.objects.attributes({ keyId, version: 1 })).to.include({ token: true, sensitive: true, extractable: false });
    expect((await services.custody.objects.listObjects()).map((o) => o.label)).to.include(`p11kms:${keyId}:v1`);
    await deleteImportedKeyMaterial({ KeyId: keyId }, ctx, services);
    expect(await services.custody.objects.exists({ keyId, version: 1 })).to.equal(false);
    await importOnce();
    const key = (await store.getKey({ keyId, region: ctx.scope.region }))!;
    await store.transact((tx) => tx.putKey({ ...key, keyState: 'PendingImport', materials: key.materials.map((m) => ({ ...m, imported: { ...m.imported!, importState: 'PENDING_IMPORT' as const } })) }));
    expect((await reconcile(services)).orphansDestroyed).to.deep.equal([`${keyId}:v1`]);
    expect(await services.custody.objects.exists({ keyId, version: 1 })).to.equal(false);
  });

  it('at ValidTo the material is destroyed in the token, the key goes to PendingImport and an AwsServiceEvent is recorded; expired import parameters are refused and destroyed', async () => {
    const { KeyMetadata } = await createKey({ Origin: 'EXTERNAL' }, ctx, services);
    const keyId = KeyMetadata!.KeyId;
    const params = await getParametersForImport({ KeyId: keyId, WrappingAlgorithm: 'RSA_AES_KEY_WRAP_SHA_1', WrappingKeySpec: 'RSA_2048' }, ctx, services);
    const material = randomBytes(32);
    const validTo = new Date(clock.now() + 10 * DAY_MS);
    await importKeyMaterial(
      { KeyId: keyId, ImportToken: Buffer.from(params.ImportToken!), EncryptedKeyMaterial: wrapMaterial(params.PublicKey!, 'RSA_AES_KEY_WRAP_SHA_1', material), ExpirationModel: 'KEY_MATERIAL_EXPIRES', ValidTo: validTo },
      ctx,
      services,
    );
    expect((await describeKey({ KeyId: keyId }, ctx, services)).KeyMetadata).to.include({ KeyState: 'Enabled', ExpirationModel: 'KEY_MATERIAL_EXPIRES' });
    expect((await describeKey({ KeyId: keyId }, ctx, services)).KeyMetadata!.ValidTo!.getTime()).to.equal(validTo.getTime());
    // The imported material is a token object the token will not reveal.
    expect(await services.custody.objects.attributes({ keyId, version: 1 })).to.include({ token: true, sensitive: true, extractable: false });
    await encrypt({ KeyId: keyId, Plaintext: Buffer.from('x') }, ctx, services);

    clock.advance(2 * DAY_MS);
    // The import parameters are 24 h old: expired, refused, and their wrapping key destroyed.
    const expired = await expectKmsError(
      importKeyMaterial({ KeyId: keyId, ImportToken: Buffer.from(params.ImportToken!), EncryptedKeyMaterial: wrapMaterial(params.PublicKey!, 'RSA_AES_KEY_WRAP_SHA_1', material), ExpirationModel: 'KEY_MATERIAL_DOES_NOT_EXPIRE' }, ctx, services),
    );
    expect(expired.name).to.equal('ExpiredImportTokenException');
    await sweeper.sweep();
    expect((await store.getKey({ keyId, region: ctx.scope.region }))!.importParameters).to.deep.equal([]);
    expect(await services.custody.importer.listWrappingKeys()).to.deep.equal([]);

    clock.setTo(validTo.getTime() + 1000);
    // The event is the sweep's last step (store, then token, then event): wait for it, then check the others.
    const expiryRecorded = async () => (events.some((e) => e.eventName === 'DeleteExpiredKeyMaterial') ? [] : ['no DeleteExpiredKeyMaterial event yet']);
    expect(await settled(expiryRecorded)).to.deep.equal([]);
    expect(events.map((e) => [e.eventName, e.eventType])).to.deep.include(['DeleteExpiredKeyMaterial', 'AwsServiceEvent']);
    expect((await store.getKey({ keyId, region: ctx.scope.region }))!.keyState).to.equal('PendingImport');
    expect(await services.custody.objects.exists({ keyId, version: 1 })).to.equal(false);
    const err = await expectKmsError(encrypt({ KeyId: keyId, Plaintext: Buffer.from('x') }, ctx, services));
    expect(err.name).to.equal('KMSInvalidStateException');
  });
});
