/**
 * Every cryptographic operation against AWS KMS, field for field, through the unmodified AWS
 * SDK: which response members are present for each key type (recorded-aws-responses.md §2 and
 * the model's "present only when" notes), and what a request that must fail answers (exception,
 * HTTP status, message), DryRun included: DryRun answers "would have succeeded" only for a
 * request that would have.
 */
import { generateKeyPairSync } from 'node:crypto';
import {
  CreateKeyCommand,
  DecryptCommand,
  DeriveSharedSecretCommand,
  EncryptCommand,
  GenerateDataKeyCommand,
  GenerateDataKeyPairCommand,
  GenerateDataKeyPairWithoutPlaintextCommand,
  GenerateDataKeyWithoutPlaintextCommand,
  GenerateMacCommand,
  GenerateRandomCommand,
  GetPublicKeyCommand,
  type KeySpec,
  type KeyUsageType,
  type KMSClient,
  ReEncryptCommand,
  SignCommand,
  VerifyCommand,
  VerifyMacCommand,
} from '@aws-sdk/client-kms';
import { expect } from 'chai';
import { expectKmsError, serverPerSuite } from '../support/server';

const DRY_RUN = 'The request would have succeeded, but the DryRun option is set.';
const NO_RSA_CONTEXT = 'EncryptionContext is not supported with asymmetric KMS keys.';
const RECIPIENT = 'Recipient (Nitro Enclaves attestation) is not supported by p11kms.';

describe('cryptographic operations compared with AWS, field for field', function () {
  this.timeout(60_000);
  let kms: KMSClient;
  const k: Record<'sym' | 'sym2' | 'rsa' | 'rsaSign' | 'p256' | 'ecdh' | 'ed' | 'hmac224' | 'hmac256', { id: string; arn: string }> = {} as never;
  const message = Buffer.from('message');
  const peer = generateKeyPairSync('ec', { namedCurve: 'P-256' }).publicKey.export({ type: 'spki', format: 'der' });
  const recipient = { KeyEncryptionAlgorithm: 'RSAES_OAEP_SHA_256' as const, AttestationDocument: Buffer.from('not an attestation document') };
  let symBlob: Uint8Array;
  /** A 191-byte data key without plaintext: over RSAES_OAEP_SHA_256's 190 bytes for RSA_2048. */
  let bigBlob: Uint8Array;
  let rsaBlob: Uint8Array;
  let signature: Uint8Array;
  let mac: Uint8Array;

  serverPerSuite({}, (_server, client) => (kms = client));
  before(async () => {
    const make = async (spec: KeySpec, usage?: KeyUsageType) => {
      const meta = (await kms.send(new CreateKeyCommand({ KeySpec: spec, KeyUsage: usage }))).KeyMetadata!;
      return { id: meta.KeyId!, arn: meta.Arn! };
    };
    Object.assign(k, {
      sym: await make('SYMMETRIC_DEFAULT'),
      sym2: await make('SYMMETRIC_DEFAULT'),
      rsa: await make('RSA_2048', 'ENCRYPT_DECRYPT'),
      rsaSign: await make('RSA_2048', 'SIGN_VERIFY'),
      p256: await make('ECC_NIST_P256', 'SIGN_VERIFY'),
      ecdh: await make('ECC_NIST_P256', 'KEY_AGREEMENT'),
      ed: await make('ECC_NIST_EDWARDS25519', 'SIGN_VERIFY'),
      hmac224: await make('HMAC_224', 'GENERATE_VERIFY_MAC'),
      hmac256: await make('HMAC_256', 'GENERATE_VERIFY_MAC'),
    });
    symBlob = (await kms.send(new EncryptCommand({ KeyId: k.sym.id, Plaintext: message }))).CiphertextBlob!;
    bigBlob = (await kms.send(new GenerateDataKeyWithoutPlaintextCommand({ KeyId: k.sym.id, NumberOfBytes: 191 }))).CiphertextBlob!;
    rsaBlob = (await kms.send(new EncryptCommand({ KeyId: k.rsa.id, Plaintext: message, EncryptionAlgorithm: 'RSAES_OAEP_SHA_256' }))).CiphertextBlob!;
    signature = (await kms.send(new SignCommand({ KeyId: k.rsaSign.id, Message: message, SigningAlgorithm: 'RSASSA_PSS_SHA_256' }))).Signature!;
    mac = (await kms.send(new GenerateMacCommand({ KeyId: k.hmac256.id, Message: message, MacAlgorithm: 'HMAC_SHA_256' }))).Mac!;
  });

  const flipLast = (blob: Uint8Array) => Buffer.from(blob).map((byte, i) => (i === blob.length - 1 ? byte ^ 1 : byte));

  /** Members the SDK parsed from the response body, without $metadata. */
  const membersOf = (out: object) => Object.entries(out).filter(([name, value]) => name !== '$metadata' && value !== undefined).map(([name]) => name).sort();

  // [operation, request, members AWS returns, what the response echoes]
  const successes: Array<[string, () => object, string[], (arn: typeof k) => Record<string, unknown>]> = [
    ['Encrypt, symmetric', () => new EncryptCommand({ KeyId: k.sym.id, Plaintext: message }), ['CiphertextBlob', 'EncryptionAlgorithm', 'KeyId'], () => ({ KeyId: k.sym.arn, EncryptionAlgorithm: 'SYMMETRIC_DEFAULT' })],
    ['Encrypt, RSA', () => new EncryptCommand({ KeyId: k.rsa.id, Plaintext: message, EncryptionAlgorithm: 'RSAES_OAEP_SHA_1' }), ['CiphertextBlob', 'EncryptionAlgorithm', 'KeyId'], () => ({ KeyId: k.rsa.arn, EncryptionAlgorithm: 'RSAES_OAEP_SHA_1' })],
    ['Decrypt, symmetric', () => new DecryptCommand({ CiphertextBlob: symBlob }), ['EncryptionAlgorithm', 'KeyId', 'KeyMaterialId', 'Plaintext'], () => ({ KeyId: k.sym.arn, EncryptionAlgorithm: 'SYMMETRIC_DEFAULT' })],
    ['Decrypt, RSA (no KeyMaterialId)', () => new DecryptCommand({ CiphertextBlob: rsaBlob, KeyId: k.rsa.id, EncryptionAlgorithm: 'RSAES_OAEP_SHA_256' }), ['EncryptionAlgorithm', 'KeyId', 'Plaintext'], () => ({ KeyId: k.rsa.arn, EncryptionAlgorithm: 'RSAES_OAEP_SHA_256' })],
    [
      'ReEncrypt, symmetric to symmetric',
      () => new ReEncryptCommand({ CiphertextBlob: symBlob, DestinationKeyId: k.sym2.id }),
      ['CiphertextBlob', 'DestinationEncryptionAlgorithm', 'DestinationKeyMaterialId', 'KeyId', 'SourceEncryptionAlgorithm', 'SourceKeyId', 'SourceKeyMaterialId'],
      () => ({ KeyId: k.sym2.arn, SourceKeyId: k.sym.arn, SourceEncryptionAlgorithm: 'SYMMETRIC_DEFAULT', DestinationEncryptionAlgorithm: 'SYMMETRIC_DEFAULT' }),
    ],
    [
      'ReEncrypt, symmetric to RSA (no DestinationKeyMaterialId)',
      () => new ReEncryptCommand({ CiphertextBlob: symBlob, DestinationKeyId: k.rsa.id, DestinationEncryptionAlgorithm: 'RSAES_OAEP_SHA_256' }),
      ['CiphertextBlob', 'DestinationEncryptionAlgorithm', 'KeyId', 'SourceEncryptionAlgorithm', 'SourceKeyId', 'SourceKeyMaterialId'],
      () => ({ KeyId: k.rsa.arn, SourceKeyId: k.sym.arn, DestinationEncryptionAlgorithm: 'RSAES_OAEP_SHA_256' }),
    ],
    [
      'ReEncrypt, RSA to symmetric (no SourceKeyMaterialId)',
      () => new ReEncryptCommand({ CiphertextBlob: rsaBlob, SourceKeyId: k.rsa.id, SourceEncryptionAlgorithm: 'RSAES_OAEP_SHA_256', DestinationKeyId: k.sym.id }),
      ['CiphertextBlob', 'DestinationEncryptionAlgorithm', 'DestinationKeyMaterialId', 'KeyId', 'SourceEncryptionAlgorithm', 'SourceKeyId'],
      () => ({ KeyId: k.sym.arn, SourceKeyId: k.rsa.arn, SourceEncryptionAlgorithm: 'RSAES_OAEP_SHA_256' }),
    ],
    ['GenerateDataKey', () => new GenerateDataKeyCommand({ KeyId: k.sym.id, KeySpec: 'AES_256' }), ['CiphertextBlob', 'KeyId', 'KeyMaterialId', 'Plaintext'], () => ({ KeyId: k.sym.arn })],
    ['GenerateDataKeyWithoutPlaintext', () => new GenerateDataKeyWithoutPlaintextCommand({ KeyId: k.sym.id, NumberOfBytes: 16 }), ['CiphertextBlob', 'KeyId', 'KeyMaterialId'], () => ({ KeyId: k.sym.arn })],
    [
      'GenerateDataKeyPair',
      () => new GenerateDataKeyPairCommand({ KeyId: k.sym.id, KeyPairSpec: 'ECC_NIST_P256' }),
      ['KeyId', 'KeyMaterialId', 'KeyPairSpec', 'PrivateKeyCiphertextBlob', 'PrivateKeyPlaintext', 'PublicKey'],
      () => ({ KeyId: k.sym.arn, KeyPairSpec: 'ECC_NIST_P256' }),
    ],
    [
      'GenerateDataKeyPairWithoutPlaintext',
      () => new GenerateDataKeyPairWithoutPlaintextCommand({ KeyId: k.sym.id, KeyPairSpec: 'ECC_NIST_P384' }),
      ['KeyId', 'KeyMaterialId', 'KeyPairSpec', 'PrivateKeyCiphertextBlob', 'PublicKey'],
      () => ({ KeyId: k.sym.arn, KeyPairSpec: 'ECC_NIST_P384' }),
    ],
    ['Sign', () => new SignCommand({ KeyId: k.p256.id, Message: message, SigningAlgorithm: 'ECDSA_SHA_256' }), ['KeyId', 'Signature', 'SigningAlgorithm'], () => ({ KeyId: k.p256.arn, SigningAlgorithm: 'ECDSA_SHA_256' })],
    [
      'Verify',
      () => new VerifyCommand({ KeyId: k.rsaSign.id, Message: message, SigningAlgorithm: 'RSASSA_PSS_SHA_256', Signature: signature }),
      ['KeyId', 'SignatureValid', 'SigningAlgorithm'],
      () => ({ KeyId: k.rsaSign.arn, SignatureValid: true, SigningAlgorithm: 'RSASSA_PSS_SHA_256' }),
    ],
    ['GenerateMac', () => new GenerateMacCommand({ KeyId: k.hmac224.id, Message: message, MacAlgorithm: 'HMAC_SHA_224' }), ['KeyId', 'Mac', 'MacAlgorithm'], () => ({ KeyId: k.hmac224.arn, MacAlgorithm: 'HMAC_SHA_224' })],
    [
      'VerifyMac',
      () => new VerifyMacCommand({ KeyId: k.hmac256.id, Message: message, MacAlgorithm: 'HMAC_SHA_256', Mac: mac }),
      ['KeyId', 'MacAlgorithm', 'MacValid'],
      () => ({ KeyId: k.hmac256.arn, MacAlgorithm: 'HMAC_SHA_256', MacValid: true }),
    ],
    [
      'DeriveSharedSecret (no CiphertextForRecipient)',
      () => new DeriveSharedSecretCommand({ KeyId: k.ecdh.id, KeyAgreementAlgorithm: 'ECDH', PublicKey: peer }),
      ['KeyAgreementAlgorithm', 'KeyId', 'KeyOrigin', 'SharedSecret'],
      () => ({ KeyId: k.ecdh.arn, KeyAgreementAlgorithm: 'ECDH', KeyOrigin: 'AWS_KMS' }),
    ],
    [
      'GetPublicKey, RSA encryption key',
      () => new GetPublicKeyCommand({ KeyId: k.rsa.id }),
      ['CustomerMasterKeySpec', 'EncryptionAlgorithms', 'KeyId', 'KeySpec', 'KeyUsage', 'PublicKey'],
      () => ({ KeyId: k.rsa.arn, KeySpec: 'RSA_2048', KeyUsage: 'ENCRYPT_DECRYPT' }),
    ],
    [
      'GetPublicKey, key agreement key',
      () => new GetPublicKeyCommand({ KeyId: k.ecdh.id }),
      ['CustomerMasterKeySpec', 'KeyAgreementAlgorithms', 'KeyId', 'KeySpec', 'KeyUsage', 'PublicKey'],
      () => ({ KeyId: k.ecdh.arn, KeyAgreementAlgorithms: ['ECDH'] }),
    ],
    ['GenerateRandom (no CiphertextForRecipient)', () => new GenerateRandomCommand({ NumberOfBytes: 12 }), ['Plaintext'], () => ({})],
  ];

  it(`answers ${successes.length} successful calls with AWS's members, KeyId as the key ARN and the algorithm echoed`, async () => {
    for (const [what, request, members, echoes] of successes) {
      const out = (await kms.send(request() as never)) as unknown as Record<string, unknown>;
      expect(membersOf(out), what).to.deep.equal(members);
      for (const [name, value] of Object.entries(echoes(k))) expect(out[name], `${what}: ${name}`).to.deep.equal(value);
    }
  });

  // [case, request, exception, message]; every one is HTTP 400 as on AWS
  const failures: Array<[string, () => object, string, string | ((keys: typeof k) => string)]> = [
    // DryRun checks what the request itself makes invalid before it answers
    ['Encrypt DryRun, RSA plaintext over the OAEP limit', () => new EncryptCommand({ KeyId: k.rsa.id, Plaintext: Buffer.alloc(215), EncryptionAlgorithm: 'RSAES_OAEP_SHA_1', DryRun: true }), 'ValidationException', 'Algorithm RSAES_OAEP_SHA_1 and key spec RSA_2048 cannot encrypt data larger than 214 bytes.'],
    ['Encrypt DryRun, RSA with a context', () => new EncryptCommand({ KeyId: k.rsa.id, Plaintext: message, EncryptionAlgorithm: 'RSAES_OAEP_SHA_1', EncryptionContext: { a: 'b' }, DryRun: true }), 'ValidationException', NO_RSA_CONTEXT],
    ['Decrypt DryRun, RSA with a context', () => new DecryptCommand({ CiphertextBlob: rsaBlob, KeyId: k.rsa.id, EncryptionAlgorithm: 'RSAES_OAEP_SHA_256', EncryptionContext: { a: 'b' }, DryRun: true }), 'ValidationException', NO_RSA_CONTEXT],
    [
      'ReEncrypt DryRun, RSA destination with a context',
      () => new ReEncryptCommand({ CiphertextBlob: symBlob, DestinationKeyId: k.rsa.id, DestinationEncryptionAlgorithm: 'RSAES_OAEP_SHA_1', DestinationEncryptionContext: { a: 'b' }, DryRun: true }),
      'ValidationException',
      NO_RSA_CONTEXT,
    ],
    ['GenerateDataKeyPair DryRun, a pair the token cannot wrap', () => new GenerateDataKeyPairCommand({ KeyId: k.sym.id, KeyPairSpec: 'ECC_NIST_EDWARDS25519', DryRun: true }), 'UnsupportedOperationException', 'The token cannot wrap ECC_NIST_EDWARDS25519 private keys, so it cannot make ECC_NIST_EDWARDS25519 data key pairs.'],
    ['Sign DryRun, ED25519_PH_SHA_512 with a raw message', () => new SignCommand({ KeyId: k.ed.id, Message: message, SigningAlgorithm: 'ED25519_PH_SHA_512', DryRun: true }), 'ValidationException', 'ED25519_PH_SHA_512 requires MessageType DIGEST. Use ED25519_SHA_512 to sign a raw message.'],
    ['Verify, ED25519_PH_SHA_512 with a 32-byte digest', () => new VerifyCommand({ KeyId: k.ed.id, Message: Buffer.alloc(32), MessageType: 'DIGEST', SigningAlgorithm: 'ED25519_PH_SHA_512', Signature: Buffer.alloc(64) }), 'ValidationException', 'Digest is invalid length for algorithm ED25519_PH_SHA_512.'],
    // without IGNORE_CIPHERTEXT, DryRun validates the ciphertext
    ['Decrypt DryRun, wrong encryption context', () => new DecryptCommand({ CiphertextBlob: symBlob, EncryptionContext: { a: 'b' }, DryRun: true }), 'InvalidCiphertextException', ''],
    ['Decrypt DryRun, damaged symmetric ciphertext', () => new DecryptCommand({ CiphertextBlob: flipLast(symBlob), DryRun: true }), 'InvalidCiphertextException', ''],
    ['Decrypt DryRun, damaged RSA ciphertext', () => new DecryptCommand({ CiphertextBlob: flipLast(rsaBlob), KeyId: k.rsa.id, EncryptionAlgorithm: 'RSAES_OAEP_SHA_256', DryRun: true }), 'InvalidCiphertextException', ''],
    ['Decrypt DryRun, RSA ciphertext with the other OAEP hash', () => new DecryptCommand({ CiphertextBlob: rsaBlob, KeyId: k.rsa.id, EncryptionAlgorithm: 'RSAES_OAEP_SHA_1', DryRun: true }), 'InvalidCiphertextException', ''],
    ['ReEncrypt DryRun, wrong source context', () => new ReEncryptCommand({ CiphertextBlob: symBlob, SourceEncryptionContext: { a: 'b' }, DestinationKeyId: k.sym2.id, DryRun: true }), 'InvalidCiphertextException', ''],
    [
      'ReEncrypt DryRun, plaintext over the RSA destination limit',
      () => new ReEncryptCommand({ CiphertextBlob: bigBlob, DestinationKeyId: k.rsa.id, DestinationEncryptionAlgorithm: 'RSAES_OAEP_SHA_256', DryRun: true }),
      'ValidationException',
      'Algorithm RSAES_OAEP_SHA_256 and key spec RSA_2048 cannot encrypt data larger than 190 bytes.',
    ],
    ['ReEncrypt DryRun with IGNORE_CIPHERTEXT, damaged ciphertext', () => new ReEncryptCommand({ CiphertextBlob: flipLast(symBlob), SourceKeyId: k.sym.id, DestinationKeyId: k.sym2.id, DryRun: true, DryRunModifiers: ['IGNORE_CIPHERTEXT'] }), 'DryRunOperationException', DRY_RUN],
    // and a request that would succeed gets AWS's DryRun answer from every operation
    ['Decrypt DryRun, symmetric', () => new DecryptCommand({ CiphertextBlob: symBlob, DryRun: true }), 'DryRunOperationException', DRY_RUN],
    ['Encrypt DryRun', () => new EncryptCommand({ KeyId: k.rsa.id, Plaintext: Buffer.alloc(214), EncryptionAlgorithm: 'RSAES_OAEP_SHA_1', DryRun: true }), 'DryRunOperationException', DRY_RUN],
    ['Decrypt DryRun', () => new DecryptCommand({ CiphertextBlob: rsaBlob, KeyId: k.rsa.id, EncryptionAlgorithm: 'RSAES_OAEP_SHA_256', DryRun: true }), 'DryRunOperationException', DRY_RUN],
    ['ReEncrypt DryRun', () => new ReEncryptCommand({ CiphertextBlob: symBlob, DestinationKeyId: k.rsa.id, DestinationEncryptionAlgorithm: 'RSAES_OAEP_SHA_1', DryRun: true }), 'DryRunOperationException', DRY_RUN],
    ['GenerateDataKeyPairWithoutPlaintext DryRun', () => new GenerateDataKeyPairWithoutPlaintextCommand({ KeyId: k.sym.id, KeyPairSpec: 'ECC_NIST_P256', DryRun: true }), 'DryRunOperationException', DRY_RUN],
    ['Verify DryRun', () => new VerifyCommand({ KeyId: k.rsaSign.id, Message: message, SigningAlgorithm: 'RSASSA_PSS_SHA_256', Signature: signature, DryRun: true }), 'DryRunOperationException', DRY_RUN],
    ['GenerateMac DryRun', () => new GenerateMacCommand({ KeyId: k.hmac256.id, Message: message, MacAlgorithm: 'HMAC_SHA_256', DryRun: true }), 'DryRunOperationException', DRY_RUN],
    ['VerifyMac DryRun', () => new VerifyMacCommand({ KeyId: k.hmac256.id, Message: message, MacAlgorithm: 'HMAC_SHA_256', Mac: mac, DryRun: true }), 'DryRunOperationException', DRY_RUN],
    ['DeriveSharedSecret DryRun', () => new DeriveSharedSecretCommand({ KeyId: k.ecdh.id, KeyAgreementAlgorithm: 'ECDH', PublicKey: peer, DryRun: true }), 'DryRunOperationException', DRY_RUN],
    // key usage, algorithm and key spec, with the recorded texts
    ['Encrypt with a signing key', () => new EncryptCommand({ KeyId: k.ed.id, Plaintext: message }), 'InvalidKeyUsageException', (x) => `${x.ed.arn} key usage is SIGN_VERIFY which is not valid for Encrypt.`],
    ['Encrypt with an RSA key and no algorithm', () => new EncryptCommand({ KeyId: k.rsa.id, Plaintext: message }), 'InvalidKeyUsageException', 'Algorithm SYMMETRIC_DEFAULT is incompatible with key spec RSA_2048.'],
    ['Encrypt with RSAES_OAEP_SHA_256 on a symmetric key', () => new EncryptCommand({ KeyId: k.sym.id, Plaintext: message, EncryptionAlgorithm: 'RSAES_OAEP_SHA_256' }), 'InvalidKeyUsageException', 'Algorithm RSAES_OAEP_SHA_256 is incompatible with key spec SYMMETRIC_DEFAULT.'],
    ['Decrypt of an RSA ciphertext without KeyId', () => new DecryptCommand({ CiphertextBlob: rsaBlob, EncryptionAlgorithm: 'RSAES_OAEP_SHA_256' }), 'InvalidCiphertextException', ''],
    ['Decrypt of a symmetric ciphertext naming a key agreement key', () => new DecryptCommand({ CiphertextBlob: symBlob, KeyId: k.ecdh.id }), 'IncorrectKeyException', 'The key ID in the request does not identify a CMK that can perform this operation.'],
    ['Decrypt naming another symmetric key', () => new DecryptCommand({ CiphertextBlob: symBlob, KeyId: k.sym2.id }), 'IncorrectKeyException', 'The key ID in the request does not identify a CMK that can perform this operation.'],
    ['ReEncrypt to an HMAC key', () => new ReEncryptCommand({ CiphertextBlob: symBlob, DestinationKeyId: k.hmac256.id }), 'InvalidKeyUsageException', (x) => `${x.hmac256.arn} key usage is GENERATE_VERIFY_MAC which is not valid for ReEncrypt.`],
    ['Sign with an ECDSA algorithm of another curve', () => new SignCommand({ KeyId: k.p256.id, Message: message, SigningAlgorithm: 'ECDSA_SHA_384' }), 'InvalidKeyUsageException', 'Algorithm ECDSA_SHA_384 is incompatible with key spec ECC_NIST_P256.'],
    ['Sign with MessageType DIGEST of the wrong length', () => new SignCommand({ KeyId: k.p256.id, Message: Buffer.alloc(48), MessageType: 'DIGEST', SigningAlgorithm: 'ECDSA_SHA_256' }), 'ValidationException', 'Digest is invalid length for algorithm ECDSA_SHA_256.'],
    ['Sign with an HMAC key', () => new SignCommand({ KeyId: k.hmac224.id, Message: message, SigningAlgorithm: 'ECDSA_SHA_256' }), 'InvalidKeyUsageException', (x) => `${x.hmac224.arn} key usage is GENERATE_VERIFY_MAC which is not valid for Sign.`],
    ['Verify a PSS signature as PKCS#1 v1.5', () => new VerifyCommand({ KeyId: k.rsaSign.id, Message: message, SigningAlgorithm: 'RSASSA_PKCS1_V1_5_SHA_256', Signature: signature }), 'KMSInvalidSignatureException', ''],
    ['Verify an RSA signature with an Ed25519 key', () => new VerifyCommand({ KeyId: k.ed.id, Message: message, SigningAlgorithm: 'ED25519_SHA_512', Signature: signature }), 'KMSInvalidSignatureException', ''],
    ['GenerateMac with the MAC algorithm of another spec', () => new GenerateMacCommand({ KeyId: k.hmac224.id, Message: message, MacAlgorithm: 'HMAC_SHA_256' }), 'InvalidKeyUsageException', 'Algorithm HMAC_SHA_256 is incompatible with key spec HMAC_224.'],
    ['VerifyMac with the MAC algorithm of another spec', () => new VerifyMacCommand({ KeyId: k.hmac256.id, Message: message, MacAlgorithm: 'HMAC_SHA_224', Mac: mac }), 'InvalidKeyUsageException', 'Algorithm HMAC_SHA_224 is incompatible with key spec HMAC_256.'],
    ['VerifyMac with a wrong MAC', () => new VerifyMacCommand({ KeyId: k.hmac256.id, Message: Buffer.from('other'), MacAlgorithm: 'HMAC_SHA_256', Mac: mac }), 'KMSInvalidMacException', ''],
    ['DeriveSharedSecret with a signing key', () => new DeriveSharedSecretCommand({ KeyId: k.p256.id, KeyAgreementAlgorithm: 'ECDH', PublicKey: peer }), 'InvalidKeyUsageException', (x) => `${x.p256.arn} key usage is SIGN_VERIFY which is not valid for DeriveSharedSecret.`],
    [
      'DeriveSharedSecret with a P-384 public key',
      () => new DeriveSharedSecretCommand({ KeyId: k.ecdh.id, KeyAgreementAlgorithm: 'ECDH', PublicKey: generateKeyPairSync('ec', { namedCurve: 'P-384' }).publicKey.export({ type: 'spki', format: 'der' }) }),
      'ValidationException',
      '',
    ],
    [
      'DeriveSharedSecret with an X25519 public key',
      () => new DeriveSharedSecretCommand({ KeyId: k.ecdh.id, KeyAgreementAlgorithm: 'ECDH', PublicKey: generateKeyPairSync('x25519').publicKey.export({ type: 'spki', format: 'der' }) }),
      'ValidationException',
      '',
    ],
    ['GetPublicKey of an HMAC key', () => new GetPublicKeyCommand({ KeyId: k.hmac256.id }), 'UnsupportedOperationException', (x) => `${x.hmac256.arn} key spec HMAC_256 has no public key.`],
    ['GenerateDataKey with an RSA key', () => new GenerateDataKeyCommand({ KeyId: k.rsa.id, KeySpec: 'AES_256' }), 'InvalidKeyUsageException', (x) => `${x.rsa.arn} key spec RSA_2048 is not valid for GenerateDataKey; use a symmetric encryption KMS key.`],
    ['GenerateDataKeyPair with an HMAC key', () => new GenerateDataKeyPairCommand({ KeyId: k.hmac256.id, KeyPairSpec: 'RSA_2048' }), 'InvalidKeyUsageException', (x) => `${x.hmac256.arn} key usage is GENERATE_VERIFY_MAC which is not valid for GenerateDataKeyPair.`],
    // Recipient: no Nitro enclave or NitroTPM attestation can be checked here
    ['Decrypt with a Recipient', () => new DecryptCommand({ CiphertextBlob: symBlob, Recipient: recipient }), 'UnsupportedOperationException', RECIPIENT],
    ['GenerateDataKey with a Recipient', () => new GenerateDataKeyCommand({ KeyId: k.sym.id, KeySpec: 'AES_256', Recipient: recipient }), 'UnsupportedOperationException', RECIPIENT],
    ['GenerateDataKeyPair with a Recipient', () => new GenerateDataKeyPairCommand({ KeyId: k.sym.id, KeyPairSpec: 'ECC_NIST_P256', Recipient: recipient }), 'UnsupportedOperationException', RECIPIENT],
    ['DeriveSharedSecret with a Recipient', () => new DeriveSharedSecretCommand({ KeyId: k.ecdh.id, KeyAgreementAlgorithm: 'ECDH', PublicKey: peer, Recipient: recipient }), 'UnsupportedOperationException', RECIPIENT],
    ['GenerateRandom with a Recipient', () => new GenerateRandomCommand({ NumberOfBytes: 8, Recipient: recipient }), 'UnsupportedOperationException', RECIPIENT],
  ];

  it(`refuses ${failures.length} invalid requests with AWS's exception, HTTP 400 and message`, async () => {
    const answers = [];
    for (const [what, request] of failures) {
      const err = await expectKmsError(kms.send(request() as never));
      // An empty AWS message reaches SDK users as "UnknownError"; compare the wire's emptiness.
      const messageText = err.message === 'UnknownError' ? '' : err.message;
      answers.push([what, err.name, err.$metadata?.httpStatusCode, messageText]);
    }
    expect(answers).to.deep.equal(failures.map(([what, , name, text]) => [what, name, 400, typeof text === 'string' ? text : text(k)]));
  });
});
