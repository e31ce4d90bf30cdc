import { constants, diffieHellman, generateKeyPairSync, type KeyObject, publicEncrypt, randomBytes, verify } from 'node:crypto';
import {
  type AlgorithmSpec,
  CreateKeyCommand,
  DecryptCommand,
  DeleteImportedKeyMaterialCommand,
  DeriveSharedSecretCommand,
  DescribeKeyCommand,
  EncryptCommand,
  GetParametersForImportCommand,
  GetPublicKeyCommand,
  ImportKeyMaterialCommand,
  type KMSClient,
  SignCommand,
  VerifyCommand,
  type WrappingKeySpec,
} from '@aws-sdk/client-kms';
import { expect } from 'chai';
import { expectKmsError, serverPerSuite } from '../support/server';
import { importWrapped, wrapMaterial } from '../support/wrap-material';

describe('import of RSA and ECC private keys (real server, real token)', function () {
  // Every GetParametersForImport makes an RSA wrapping key pair in the token: up to twelve per
  // test here (failed at 30 s under load). The tests wait for no time: this only bounds a hung one.
  this.timeout(120_000);
  let kms: KMSClient;
  serverPerSuite({}, (_server, client) => (kms = client));

  const pkcs8 = (key: KeyObject) => key.export({ type: 'pkcs8', format: 'der' });
  const spki = (key: KeyObject) => key.export({ type: 'spki', format: 'der' });

  async function asymmetricKey(KeySpec: string, KeyUsage: string): Promise<string> {
    const { KeyMetadata } = await kms.send(new CreateKeyCommand({ Origin: 'EXTERNAL', KeySpec: KeySpec as never, KeyUsage: KeyUsage as never }));
    expect(KeyMetadata!.KeyState).to.equal('PendingImport');
    return KeyMetadata!.KeyId!;
  }

  const importPrivate = (keyId: string, privateKey: KeyObject, algorithm: AlgorithmSpec = 'RSA_AES_KEY_WRAP_SHA_1', spec: WrappingKeySpec = 'RSA_2048') =>
    importWrapped(kms, keyId, pkcs8(privateKey), { algorithm, spec });

  it('RSA_2048 SIGN_VERIFY: Sign verifies with node\'s copy of the public key, GetPublicKey is the imported SPKI; same key re-imports, another is IncorrectKeyMaterialException; delete and re-import', async () => {
    const pair = generateKeyPairSync('rsa', { modulusLength: 2048 });
    const keyId = await asymmetricKey('RSA_2048', 'SIGN_VERIFY');
    const first = await importPrivate(keyId, pair.privateKey, 'RSA_AES_KEY_WRAP_SHA_1');
    expect((await kms.send(new DescribeKeyCommand({ KeyId: keyId }))).KeyMetadata!.KeyState).to.equal('Enabled');
    const { PublicKey } = await kms.send(new GetPublicKeyCommand({ KeyId: keyId }));
    expect(Buffer.from(PublicKey!).equals(spki(pair.publicKey))).to.equal(true);
    const message = Buffer.from('imported RSA signing key');
    const pss = await kms.send(new SignCommand({ KeyId: keyId, Message: message, SigningAlgorithm: 'RSASSA_PSS_SHA_256' }));
    expect(verify('sha256', message, { key: pair.publicKey, padding: constants.RSA_PKCS1_PSS_PADDING, saltLength: 32 }, Buffer.from(pss.Signature!))).to.equal(true);
    const pkcs1 = await kms.send(new SignCommand({ KeyId: keyId, Message: message, SigningAlgorithm: 'RSASSA_PKCS1_V1_5_SHA_384' }));
    expect(verify('sha384', message, pair.publicKey, Buffer.from(pkcs1.Signature!))).to.equal(true);
    const verified = await kms.send(new VerifyCommand({ KeyId: keyId, Message: message, Signature: pkcs1.Signature, SigningAlgorithm: 'RSASSA_PKCS1_V1_5_SHA_384' }));
    expect(verified.SignatureValid).to.equal(true);
    // A SIGN_VERIFY key cannot decrypt, and the token object agrees.
    expect((await expectKmsError(kms.send(new DecryptCommand({ KeyId: keyId, CiphertextBlob: randomBytes(256), EncryptionAlgorithm: 'RSAES_OAEP_SHA_256' })))).name).to.equal('InvalidKeyUsageException');

    // Re-import: the same key (another wrapping algorithm) is accepted with the same id; another key is refused.
    const again = await importPrivate(keyId, pair.privateKey, 'RSA_AES_KEY_WRAP_SHA_256', 'RSA_3072');
    expect(again.KeyMaterialId).to.equal(first.KeyMaterialId);
    const other = generateKeyPairSync('rsa', { modulusLength: 2048 });
    expect((await expectKmsError(importPrivate(keyId, other.privateKey))).name).to.equal('IncorrectKeyMaterialException');

    await kms.send(new DeleteImportedKeyMaterialCommand({ KeyId: keyId }));
    expect((await kms.send(new DescribeKeyCommand({ KeyId: keyId }))).KeyMetadata!.KeyState).to.equal('PendingImport');
    expect((await expectKmsError(kms.send(new SignCommand({ KeyId: keyId, Message: message, SigningAlgorithm: 'RSASSA_PSS_SHA_256' })))).name).to.equal('KMSInvalidStateException');
    expect((await expectKmsError(importPrivate(keyId, other.privateKey))).name).to.equal('IncorrectKeyMaterialException');
    // Re-imported after deletion: both token objects exist again (fresh handles, not the destroyed ones).
    expect((await importPrivate(keyId, pair.privateKey)).KeyMaterialId).to.equal(first.KeyMaterialId);
    const after = await kms.send(new SignCommand({ KeyId: keyId, Message: message, SigningAlgorithm: 'RSASSA_PSS_SHA_256' }));
    expect(verify('sha256', message, { key: pair.publicKey, padding: constants.RSA_PKCS1_PSS_PADDING, saltLength: 32 }, Buffer.from(after.Signature!))).to.equal(true);
    expect(Buffer.from((await kms.send(new GetPublicKeyCommand({ KeyId: keyId }))).PublicKey!).equals(spki(pair.publicKey))).to.equal(true);
  });

  it('RSA_3072 ENCRYPT_DECRYPT (RSA_AES_KEY_WRAP_SHA_256): Decrypt opens node-made OAEP ciphertexts; the key cannot sign', async () => {
    const pair = generateKeyPairSync('rsa', { modulusLength: 3072 });
    const keyId = await asymmetricKey('RSA_3072', 'ENCRYPT_DECRYPT');
    await importPrivate(keyId, pair.privateKey, 'RSA_AES_KEY_WRAP_SHA_256', 'RSA_4096');
    const plaintext = randomBytes(48);
    for (const [algorithm, hash] of [
      ['RSAES_OAEP_SHA_256', 'sha256'],
      ['RSAES_OAEP_SHA_1', 'sha1'],
    ] as const) {
      const ciphertext = publicEncrypt({ key: pair.publicKey, padding: constants.RSA_PKCS1_OAEP_PADDING, oaepHash: hash }, plaintext);
      const out = await kms.send(new DecryptCommand({ KeyId: keyId, CiphertextBlob: ciphertext, EncryptionAlgorithm: algorithm }));
      expect(Buffer.from(out.Plaintext!).equals(plaintext)).to.equal(true);
    }
    const { CiphertextBlob } = await kms.send(new EncryptCommand({ KeyId: keyId, Plaintext: plaintext, EncryptionAlgorithm: 'RSAES_OAEP_SHA_256' }));
    const { privateDecrypt } = await import('node:crypto');
    expect(privateDecrypt({ key: pair.privateKey, padding: constants.RSA_PKCS1_OAEP_PADDING, oaepHash: 'sha256' }, Buffer.from(CiphertextBlob!)).equals(plaintext)).to.equal(true);
    expect((await expectKmsError(kms.send(new SignCommand({ KeyId: keyId, Message: plaintext, SigningAlgorithm: 'RSASSA_PSS_SHA_256' })))).name).to.equal('InvalidKeyUsageException');
  });

  it('ECC SIGN_VERIFY on every curve, through every wrapping path AWS allows: GetPublicKey is the imported SPKI (computed in the token), Sign verifies with node', async () => {
    const cases: Array<[string, string, AlgorithmSpec, WrappingKeySpec]> = [
      ['ECC_NIST_P256', 'prime256v1', 'RSA_AES_KEY_WRAP_SHA_1', 'RSA_2048'],
      ['ECC_NIST_P384', 'secp384r1', 'RSAES_OAEP_SHA_1', 'RSA_2048'],
      ['ECC_NIST_P521', 'secp521r1', 'RSAES_OAEP_SHA_256', 'RSA_3072'],
      ['ECC_SECG_P256K1', 'secp256k1', 'RSA_AES_KEY_WRAP_SHA_256', 'RSA_2048'],
    ];
    const hashes: Record<string, [string, string]> = {
      ECC_NIST_P256: ['ECDSA_SHA_256', 'sha256'],
      ECC_NIST_P384: ['ECDSA_SHA_384', 'sha384'],
      ECC_NIST_P521: ['ECDSA_SHA_512', 'sha512'],
      ECC_SECG_P256K1: ['ECDSA_SHA_256', 'sha256'],
    };
    for (const [keySpec, curve, algorithm, wrappingSpec] of cases) {
      const pair = generateKeyPairSync('ec', { namedCurve: curve });
      const keyId = await asymmetricKey(keySpec, 'SIGN_VERIFY');
      const first = await importPrivate(keyId, pair.privateKey, algorithm, wrappingSpec);
      const { PublicKey } = await kms.send(new GetPublicKeyCommand({ KeyId: keyId }));
      expect(Buffer.from(PublicKey!).equals(spki(pair.publicKey)), keySpec).to.equal(true);
      const message = Buffer.from(`imported ${keySpec}`);
      const [signingAlgorithm, hash] = hashes[keySpec];
      const { Signature } = await kms.send(new SignCommand({ KeyId: keyId, Message: message, SigningAlgorithm: signingAlgorithm as never }));
      expect(verify(hash, message, pair.publicKey, Buffer.from(Signature!)), keySpec).to.equal(true);
      expect((await kms.send(new VerifyCommand({ KeyId: keyId, Message: message, Signature, SigningAlgorithm: signingAlgorithm as never }))).SignatureValid).to.equal(true);
      // Re-import of the same key is accepted; another key of the same curve is not.
      expect((await importPrivate(keyId, pair.privateKey, 'RSA_AES_KEY_WRAP_SHA_1')).KeyMaterialId).to.equal(first.KeyMaterialId);
      const other = generateKeyPairSync('ec', { namedCurve: curve });
      expect((await expectKmsError(importPrivate(keyId, other.privateKey))).name, keySpec).to.equal('IncorrectKeyMaterialException');
    }
  });

  it('ECC KEY_AGREEMENT: DeriveSharedSecret equals node\'s ECDH with the imported private key', async () => {
    const pair = generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
    const keyId = await asymmetricKey('ECC_NIST_P256', 'KEY_AGREEMENT');
    await importPrivate(keyId, pair.privateKey, 'RSA_AES_KEY_WRAP_SHA_1');
    const peer = generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
    const { SharedSecret } = await kms.send(new DeriveSharedSecretCommand({ KeyId: keyId, KeyAgreementAlgorithm: 'ECDH', PublicKey: spki(peer.publicKey) }));
    expect(Buffer.from(SharedSecret!).equals(diffieHellman({ privateKey: peer.privateKey, publicKey: pair.publicKey }))).to.equal(true);
    expect((await expectKmsError(kms.send(new SignCommand({ KeyId: keyId, Message: Buffer.from('x'), SigningAlgorithm: 'ECDSA_SHA_256' })))).name).to.equal('InvalidKeyUsageException');
  });

  it('refused: wrapping algorithms AWS does not allow for private keys, material of another type or size, undecryptable material', async () => {
    const rsaKey = await asymmetricKey('RSA_2048', 'SIGN_VERIFY');
    for (const algorithm of ['RSAES_OAEP_SHA_1', 'RSAES_OAEP_SHA_256', 'RSAES_PKCS1_V1_5'] as AlgorithmSpec[]) {
      const err = await expectKmsError(kms.send(new GetParametersForImportCommand({ KeyId: rsaKey, WrappingAlgorithm: algorithm, WrappingKeySpec: 'RSA_4096' })));
      expect(err.name, algorithm).to.equal('ValidationException');
      expect(err.message).to.contain('RSA_AES_KEY_WRAP_SHA_1 or RSA_AES_KEY_WRAP_SHA_256');
    }
    const p521 = await asymmetricKey('ECC_NIST_P521', 'SIGN_VERIFY');
    for (const [algorithm, spec] of [
      ['RSAES_OAEP_SHA_1', 'RSA_2048'],
      ['RSAES_OAEP_SHA_256', 'RSA_2048'],
      ['RSAES_PKCS1_V1_5', 'RSA_4096'],
    ] as Array<[AlgorithmSpec, WrappingKeySpec]>) {
      expect((await expectKmsError(kms.send(new GetParametersForImportCommand({ KeyId: p521, WrappingAlgorithm: algorithm, WrappingKeySpec: spec })))).name, algorithm).to.equal('ValidationException');
    }
    // Material that is not a private key of the KMS key's spec.
    expect((await expectKmsError(importPrivate(rsaKey, generateKeyPairSync('rsa', { modulusLength: 3072 }).privateKey))).name).to.equal('ValidationException');
    expect((await expectKmsError(importPrivate(rsaKey, generateKeyPairSync('ec', { namedCurve: 'prime256v1' }).privateKey))).name).to.equal('ValidationException');
    expect((await expectKmsError(importPrivate(p521, generateKeyPairSync('ec', { namedCurve: 'secp384r1' }).privateKey))).name).to.equal('ValidationException');
    const params = await kms.send(new GetParametersForImportCommand({ KeyId: rsaKey, WrappingAlgorithm: 'RSA_AES_KEY_WRAP_SHA_1', WrappingKeySpec: 'RSA_2048' }));
    const send = (material: Buffer) =>
      kms.send(new ImportKeyMaterialCommand({ KeyId: rsaKey, ImportToken: params.ImportToken, EncryptedKeyMaterial: material, ExpirationModel: 'KEY_MATERIAL_DOES_NOT_EXPIRE' }));
    expect((await expectKmsError(send(wrapMaterial(params.PublicKey!, 'RSA_AES_KEY_WRAP_SHA_1', randomBytes(600))))).name).to.equal('ValidationException');
    const tampered = wrapMaterial(params.PublicKey!, 'RSA_AES_KEY_WRAP_SHA_1', pkcs8(generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey));
    tampered[tampered.length - 1] ^= 1;
    expect((await expectKmsError(send(tampered))).name).to.equal('InvalidCiphertextException');
    expect((await kms.send(new DescribeKeyCommand({ KeyId: rsaKey }))).KeyMetadata!.KeyState).to.equal('PendingImport');
  });
});
