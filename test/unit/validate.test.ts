import { expect } from 'chai';
import { KmsError } from '../../src/errors';
import { SHAPES, OPERATIONS } from '../../src/model/generated/shapes';
import type { OperationName } from '../../src/model/generated/types';
import Ajv from 'ajv';
import { INPUT_SCHEMAS } from '../../src/model/generated/schemas';
import { base64DecodedLength, validateInput, validatorWarmUps } from '../../src/wire/aws-json/validate';

function failure(operation: OperationName, body: unknown): KmsError {
  try {
    validateInput(operation, body);
  } catch (err) {
    expect(err).to.be.instanceOf(KmsError);
    return err as KmsError;
  }
  throw new Error(`expected ${operation} ${JSON.stringify(body)} to fail validation`);
}

function expectValidation(operation: OperationName, body: unknown, message: string): void {
  const err = failure(operation, body);
  expect(err.name).to.equal('ValidationException');
  expect(err.message).to.equal(message);
}

function expectSerialization(operation: OperationName, body: unknown, message?: string): void {
  const err = failure(operation, body);
  expect(err.name).to.equal('SerializationException');
  if (message !== undefined) expect(err.message).to.equal(message);
}

function expectValid(operation: OperationName, body: unknown): void {
  expect(() => validateInput(operation, body)).not.to.throw();
}

const b64 = (n: number, fill = 0x41): string => Buffer.alloc(n, fill).toString('base64');
const KEY_ARN = 'arn:aws:kms:us-east-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab';

describe('wire/aws-json/validate', () => {
  describe('messages recorded from real AWS', () => {
    it('GenerateRandom NumberOfBytes 0', () => {
      expectValidation(
        'GenerateRandom',
        { NumberOfBytes: 0 },
        "1 validation error detected: Value '0' at 'numberOfBytes' failed to satisfy constraint: Member must have value greater than or equal to 1",
      );
    });

    it('GenerateRandom NumberOfBytes 1025', () => {
      expectValidation(
        'GenerateRandom',
        { NumberOfBytes: 1025 },
        "1 validation error detected: Value '1025' at 'numberOfBytes' failed to satisfy constraint: Member must have value less than or equal to 1024",
      );
    });

    it('Encrypt with a 4097-byte plaintext (value never rendered)', () => {
      expectValidation(
        'Encrypt',
        { KeyId: KEY_ARN, Plaintext: b64(4097) },
        "1 validation error detected: Value at 'plaintext' failed to satisfy constraint: Member must have length less than or equal to 4096",
      );
    });

    it('Encrypt with an empty plaintext', () => {
      expectValidation(
        'Encrypt',
        { KeyId: KEY_ARN, Plaintext: '' },
        "1 validation error detected: Value at 'plaintext' failed to satisfy constraint: Member must have length greater than or equal to 1",
      );
    });

    it('CreateKey with a bad KeySpec lists the model enum in model order', () => {
      const keySpecs = SHAPES['KeySpec']!.enum!;
      expect(keySpecs[0]).to.equal('RSA_2048');
      expectValidation(
        'CreateKey',
        { KeySpec: 'HMAC_random' },
        "1 validation error detected: Value 'HMAC_random' at 'keySpec' failed to satisfy constraint: " +
          `Member must satisfy enum value set: [${keySpecs.join(', ')}]`,
      );
      expectValidation(
        'CreateKey',
        { KeySpec: 'HMAC_random' },
        "1 validation error detected: Value 'HMAC_random' at 'keySpec' failed to satisfy constraint: Member must satisfy enum value set: " +
          '[RSA_2048, RSA_3072, RSA_4096, ECC_NIST_P256, ECC_NIST_P384, ECC_NIST_P521, ECC_SECG_P256K1, SYMMETRIC_DEFAULT, ' +
          'HMAC_224, HMAC_256, HMAC_384, HMAC_512, SM2, ML_DSA_44, ML_DSA_65, ML_DSA_87, ECC_NIST_EDWARDS25519]',
      );
    });

    it('CreateKey with a bad KeyUsage', () => {
      expectValidation(
        'CreateKey',
        { KeyUsage: 'RANDOM' },
        "1 validation error detected: Value 'RANDOM' at 'keyUsage' failed to satisfy constraint: " +
          'Member must satisfy enum value set: [SIGN_VERIFY, ENCRYPT_DECRYPT, GENERATE_VERIFY_MAC, KEY_AGREEMENT]',
      );
    });

    it('DeriveSharedSecret / GenerateMac with bad algorithms', () => {
      expectValidation(
        'DeriveSharedSecret',
        { KeyId: KEY_ARN, KeyAgreementAlgorithm: 'INVALID', PublicKey: b64(65) },
        "1 validation error detected: Value 'INVALID' at 'keyAgreementAlgorithm' failed to satisfy constraint: Member must satisfy enum value set: [ECDH]",
      );
      expectValidation(
        'GenerateMac',
        { KeyId: KEY_ARN, Message: b64(3), MacAlgorithm: 'INVALID' },
        "1 validation error detected: Value 'INVALID' at 'macAlgorithm' failed to satisfy constraint: " +
          'Member must satisfy enum value set: [HMAC_SHA_224, HMAC_SHA_256, HMAC_SHA_384, HMAC_SHA_512]',
      );
    });

    it('tag value of 257 characters (TagResource and CreateKey)', () => {
      const v = 'v'.repeat(257);
      const expected =
        `1 validation error detected: Value '${v}' at 'tags.1.member.tagValue' failed to satisfy constraint: ` +
        'Member must have length less than or equal to 256';
      expectValidation('TagResource', { KeyId: KEY_ARN, Tags: [{ TagKey: 'k', TagValue: v }] }, expected);
      expectValidation('CreateKey', { Tags: [{ TagKey: 'k', TagValue: v }] }, expected);
    });

    it('tag key of 129 characters', () => {
      const k = 'k'.repeat(129);
      expectValidation(
        'TagResource',
        { KeyId: KEY_ARN, Tags: [{ TagKey: 'a', TagValue: '' }, { TagKey: k, TagValue: 'v' }] },
        `1 validation error detected: Value '${k}' at 'tags.2.member.tagKey' failed to satisfy constraint: ` +
          'Member must have length less than or equal to 128',
      );
    });

    it('missing required KeyId on Encrypt', () => {
      expectValidation(
        'Encrypt',
        { Plaintext: b64(10) },
        "1 validation error detected: Value null at 'keyId' failed to satisfy constraint: Member must not be null",
      );
    });

    it('GenerateRandom without NumberOfBytes is valid for the model (the operation decides)', () => {
      expectValid('GenerateRandom', {});
    });
  });

  describe('multiple violations', () => {
    it('joins with "; " and pluralises', () => {
      expectValidation(
        'Encrypt',
        {},
        "2 validation errors detected: Value null at 'keyId' failed to satisfy constraint: Member must not be null; " +
          "Value null at 'plaintext' failed to satisfy constraint: Member must not be null",
      );
    });

    it('follows the member order of the model, not the order of the body', () => {
      // CreateKeyRequest members: Policy, Description, KeyUsage, CustomerMasterKeySpec, KeySpec, Origin, ...
      expectValidation(
        'CreateKey',
        { Origin: 'NOPE', KeySpec: 'NOPE', KeyUsage: 'NOPE' },
        "3 validation errors detected: Value 'NOPE' at 'keyUsage' failed to satisfy constraint: " +
          'Member must satisfy enum value set: [SIGN_VERIFY, ENCRYPT_DECRYPT, GENERATE_VERIFY_MAC, KEY_AGREEMENT]; ' +
          `Value 'NOPE' at 'keySpec' failed to satisfy constraint: Member must satisfy enum value set: [${SHAPES['KeySpec']!.enum!.join(', ')}]; ` +
          "Value 'NOPE' at 'origin' failed to satisfy constraint: Member must satisfy enum value set: [AWS_KMS, EXTERNAL, AWS_CLOUDHSM, EXTERNAL_KEY_STORE]",
      );
    });

    it('interleaves missing required members with other violations in model order', () => {
      // SignRequest members: KeyId, Message, MessageType, GrantTokens, SigningAlgorithm, DryRun
      expectValidation(
        'Sign',
        { SigningAlgorithm: 'X', Message: '' },
        "3 validation errors detected: Value null at 'keyId' failed to satisfy constraint: Member must not be null; " +
          "Value at 'message' failed to satisfy constraint: Member must have length greater than or equal to 1; " +
          `Value 'X' at 'signingAlgorithm' failed to satisfy constraint: Member must satisfy enum value set: [${SHAPES['SigningAlgorithmSpec']!.enum!.join(', ')}]`,
      );
    });

    it('reports every violated constraint of one member (length before pattern)', () => {
      expectValidation(
        'CreateAlias',
        { AliasName: '', TargetKeyId: KEY_ARN },
        "2 validation errors detected: Value '' at 'aliasName' failed to satisfy constraint: Member must have length greater than or equal to 1; " +
          "Value '' at 'aliasName' failed to satisfy constraint: Member must satisfy regular expression pattern: ^[a-zA-Z0-9:/_-]+$",
      );
    });

    it('orders nested list elements by index', () => {
      expectValidation(
        'CreateKey',
        { Tags: [{ TagKey: 'a' }, null, { TagKey: '', TagValue: '' }] },
        "3 validation errors detected: Value null at 'tags.1.member.tagValue' failed to satisfy constraint: Member must not be null; " +
          "Value null at 'tags.2.member' failed to satisfy constraint: Member must not be null; " +
          "Value '' at 'tags.3.member.tagKey' failed to satisfy constraint: Member must have length greater than or equal to 1",
      );
    });
  });

  describe('constraint wording', () => {
    it('patterns are the model pattern verbatim and must match the whole value', () => {
      expectValid('CreateAlias', { AliasName: 'alias/my-key_1', TargetKeyId: KEY_ARN });
      expectValidation(
        'CreateAlias',
        { AliasName: 'alias/has space', TargetKeyId: KEY_ARN },
        "1 validation error detected: Value 'alias/has space' at 'aliasName' failed to satisfy constraint: " +
          'Member must satisfy regular expression pattern: ^[a-zA-Z0-9:/_-]+$',
      );
      // No anchors in the model pattern, but AWS still requires the whole value to match.
      expectValidation(
        'PutKeyPolicy',
        { KeyId: KEY_ARN, Policy: '{"a":"\u2603"}' },
        `1 validation error detected: Value '{"a":"\u2603"}' at 'policy' failed to satisfy constraint: ` +
          'Member must satisfy regular expression pattern: [\\u0009\\u000A\\u000D\\u0020-\\u00FF]+',
      );
      expectValid('PutKeyPolicy', { KeyId: KEY_ARN, Policy: '{"Version":"2012-10-17","Statement":[]}\n\t' });
    });

    it('integer ranges use "value", lengths use "length"', () => {
      expectValidation(
        'ScheduleKeyDeletion',
        { KeyId: KEY_ARN, PendingWindowInDays: 0 },
        "1 validation error detected: Value '0' at 'pendingWindowInDays' failed to satisfy constraint: Member must have value greater than or equal to 1",
      );
      expectValidation(
        'EnableKeyRotation',
        { KeyId: KEY_ARN, RotationPeriodInDays: 2561 },
        "1 validation error detected: Value '2561' at 'rotationPeriodInDays' failed to satisfy constraint: Member must have value less than or equal to 2560",
      );
      expectValidation(
        'DescribeKey',
        { KeyId: '' },
        "1 validation error detected: Value '' at 'keyId' failed to satisfy constraint: Member must have length greater than or equal to 1",
      );
    });

    it('list length and list-of-scalar element constraints', () => {
      const tokens = Array.from({ length: 11 }, (_, i) => `t${i}`);
      expectValidation(
        'Encrypt',
        { KeyId: KEY_ARN, Plaintext: b64(1), GrantTokens: tokens },
        `1 validation error detected: Value '[${tokens.join(', ')}]' at 'grantTokens' failed to satisfy constraint: ` +
          'Member must have length less than or equal to 10',
      );
      expectValidation(
        'Encrypt',
        { KeyId: KEY_ARN, Plaintext: b64(1), GrantTokens: ['ok', ''] },
        "1 validation error detected: Value '[ok, ]' at 'grantTokens' failed to satisfy constraint: " +
          'Member must satisfy constraint: [Member must have length less than or equal to 8192, Member must have length greater than or equal to 1]',
      );
      expectValidation(
        'CreateGrant',
        { KeyId: KEY_ARN, GranteePrincipal: 'arn:aws:iam::111122223333:role/r', Operations: ['Encrypt', 'Foo', 'Bar'] },
        "1 validation error detected: Value '[Encrypt, Foo, Bar]' at 'operations' failed to satisfy constraint: " +
          `Member must satisfy constraint: [Member must satisfy enum value set: [${SHAPES['GrantOperation']!.enum!.join(', ')}]]`,
      );
    });

    it('never renders sensitive values', () => {
      const err = failure('CreateCustomKeyStore', { CustomKeyStoreName: 'store', KeyStorePassword: 'secret' });
      expect(err.message).to.equal(
        "1 validation error detected: Value at 'keyStorePassword' failed to satisfy constraint: Member must have length greater than or equal to 7",
      );
      expect(err.message).not.to.contain('secret');
    });

    it('never renders blob content', () => {
      const plaintext = b64(5000, 0x53);
      const err = failure('Encrypt', { KeyId: KEY_ARN, Plaintext: plaintext });
      expect(err.message).not.to.contain(plaintext.slice(0, 16));
    });
  });

  describe('SerializationException', () => {
    for (const body of [[], [{}], 'x', 5, null, true]) {
      it(`rejects a non-object body ${JSON.stringify(body)}`, () => {
        expectSerialization('Encrypt', body, 'Expected a JSON object as the request body');
      });
    }

    it('wrong JSON types name the member', () => {
      expectSerialization('GenerateRandom', { NumberOfBytes: '5' }, "Value for 'NumberOfBytes' is not a valid integer");
      expectSerialization('GenerateRandom', { NumberOfBytes: 1.5 }, "Value for 'NumberOfBytes' is not a valid integer");
      expectSerialization('GenerateRandom', { NumberOfBytes: 2 ** 31 }, "Value for 'NumberOfBytes' is not a valid integer");
      expectSerialization('GenerateRandom', { NumberOfBytes: true }, "Value for 'NumberOfBytes' is not a valid integer");
      expectSerialization('DescribeKey', { KeyId: 5 }, "Value for 'KeyId' is not a valid string");
      expectSerialization('DescribeKey', { KeyId: { a: 1 } }, "Value for 'KeyId' is not a valid string");
      expectSerialization('DescribeKey', { KeyId: ['a'] }, "Value for 'KeyId' is not a valid string");
      expectSerialization('Encrypt', { KeyId: KEY_ARN, Plaintext: 12 }, "Value for 'Plaintext' is not valid base64");
      expectSerialization('Encrypt', { KeyId: KEY_ARN, Plaintext: b64(1), DryRun: 'true' }, "Value for 'DryRun' is not a valid boolean");
      expectSerialization('Encrypt', { KeyId: KEY_ARN, Plaintext: b64(1), EncryptionContext: 'a=b' }, "Value for 'EncryptionContext' is not a valid map");
      expectSerialization('Encrypt', { KeyId: KEY_ARN, Plaintext: b64(1), EncryptionContext: { a: 1 } }, "Value for 'EncryptionContext.a' is not a valid string");
      expectSerialization('Encrypt', { KeyId: KEY_ARN, Plaintext: b64(1), GrantTokens: 'tok' }, "Value for 'GrantTokens' is not a valid list");
      expectSerialization('Encrypt', { KeyId: KEY_ARN, Plaintext: b64(1), GrantTokens: ['a', 7] }, "Value for 'GrantTokens[1]' is not a valid string");
      expectSerialization('CreateKey', { Tags: {} }, "Value for 'Tags' is not a valid list");
      expectSerialization('CreateKey', { Tags: ['k=v'] }, "Value for 'Tags[0]' is not a valid structure");
      expectSerialization('CreateKey', { Tags: [{ TagKey: 'k', TagValue: 1 }] }, "Value for 'Tags[0].TagValue' is not a valid string");
      expectSerialization('Decrypt', { CiphertextBlob: b64(10), Recipient: 'x' }, "Value for 'Recipient' is not a valid structure");
      expectSerialization(
        'ImportKeyMaterial',
        { KeyId: KEY_ARN, ImportToken: b64(10), EncryptedKeyMaterial: b64(10), ValidTo: '2030-01-01T00:00:00Z' },
        "Value for 'ValidTo' is not a valid timestamp",
      );
    });

    it('a timestamp beyond what a date can hold is malformed, not a date that never comes', () => {
      // Pre: 1e20 s became an Invalid Date that passed every range check and expired at the next start.
      for (const ValidTo of [1e20, -1e20, 8.64e12 + 1]) {
        expectSerialization('ImportKeyMaterial', { KeyId: KEY_ARN, ImportToken: b64(10), EncryptedKeyMaterial: b64(10), ValidTo }, "Value for 'ValidTo' is not a valid timestamp");
      }
      expectValid('ImportKeyMaterial', { KeyId: KEY_ARN, ImportToken: b64(10), EncryptedKeyMaterial: b64(10), ValidTo: 8.64e12 });
    });

    it('takes precedence over constraint violations', () => {
      expectSerialization('Encrypt', { Plaintext: 'not base64!' }, "Value for 'Plaintext' is not valid base64");
      expectSerialization('CreateKey', { KeySpec: 'NOPE', KeyUsage: 3 }, "Value for 'KeyUsage' is not a valid string");
    });

    it('reports the first malformed member in model order', () => {
      expectSerialization('Encrypt', { DryRun: 1, KeyId: 1, Plaintext: b64(1) }, "Value for 'KeyId' is not a valid string");
    });
  });

  describe('base64 blobs', () => {
    const valid: Array<[string, number]> = [
      ['', 0],
      ['QQ==', 1],
      ['QQ', 1],
      ['QUI=', 2],
      ['QUI', 2],
      ['QUJD', 3],
      ['QUJDRA==', 4],
      ['+/+/', 3],
      ['AAAA', 3],
    ];
    for (const [s, n] of valid) {
      it(`accepts ${JSON.stringify(s)} (${n} bytes)`, () => {
        expect(base64DecodedLength(s)).to.equal(n);
        expect(Buffer.from(s, 'base64').length).to.equal(n);
      });
    }

    const invalid = ['Q', 'QQ=', 'QQ===', '====', '==', '=', 'QR==', 'QUJ=', 'QR', 'QUJ', 'Q Q=', 'QQ==\n', ' QQ==', 'QQ==QQ==', '-_8=', 'QUJD\u00e9', 'QU=D', 'QUJDR'];
    for (const s of invalid) {
      it(`rejects ${JSON.stringify(s)} with SerializationException`, () => {
        expect(base64DecodedLength(s)).to.equal(-1);
        expectSerialization('Encrypt', { KeyId: KEY_ARN, Plaintext: s }, "Value for 'Plaintext' is not valid base64");
      });
    }

    it('agrees with a Buffer round trip on every short string over a small alphabet', () => {
      const alphabet = ['A', 'Q', 'g', 'w', '/', '+', '9', '=', '-', ' '];
      const strip = (x: string): string => x.replace(/=+$/, '');
      const reference = (s: string): number => {
        if (!/^[A-Za-z0-9+/]*={0,2}$/.test(s)) return -1;
        if (s.includes('=') && s.length % 4 !== 0) return -1;
        const buf = Buffer.from(s, 'base64');
        return strip(buf.toString('base64')) === strip(s) ? buf.length : -1;
      };
      let checked = 0;
      const walk = (prefix: string, depth: number): void => {
        expect(base64DecodedLength(prefix), JSON.stringify(prefix)).to.equal(reference(prefix));
        checked++;
        if (depth > 0) for (const c of alphabet) walk(prefix + c, depth - 1);
      };
      walk('', 5);
      expect(checked).to.be.greaterThan(100000);
    });

    it('checks the decoded length at the exact boundaries', () => {
      expectValid('Encrypt', { KeyId: KEY_ARN, Plaintext: b64(4096) });
      expectValid('Encrypt', { KeyId: KEY_ARN, Plaintext: b64(4096).replace(/=+$/, '') });
      expectValid('Encrypt', { KeyId: KEY_ARN, Plaintext: b64(1) });
      expectValidation(
        'Encrypt',
        { KeyId: KEY_ARN, Plaintext: b64(4097).replace(/=+$/, '') },
        "1 validation error detected: Value at 'plaintext' failed to satisfy constraint: Member must have length less than or equal to 4096",
      );
      expectValid('Decrypt', { CiphertextBlob: b64(6144) });
      expectValidation(
        'Decrypt',
        { CiphertextBlob: b64(6145) },
        "1 validation error detected: Value at 'ciphertextBlob' failed to satisfy constraint: Member must have length less than or equal to 6144",
      );
    });

    it('validates blobs nested in structures', () => {
      expectValidation(
        'Decrypt',
        { CiphertextBlob: b64(10), Recipient: { KeyEncryptionAlgorithm: 'RSAES_OAEP_SHA_256', AttestationDocument: '' } },
        "1 validation error detected: Value at 'recipient.attestationDocument' failed to satisfy constraint: Member must have length greater than or equal to 1",
      );
      expectSerialization(
        'Decrypt',
        { CiphertextBlob: b64(10), Recipient: { AttestationDocument: 'a b' } },
        "Value for 'Recipient.AttestationDocument' is not valid base64",
      );
    });
  });

  describe('accepted inputs', () => {
    it('accepts a typical Encrypt body', () => {
      expectValid('Encrypt', {
        KeyId: 'alias/my-key',
        Plaintext: b64(32),
        EncryptionContext: { purpose: 'test', '': '', __proto__x: 'y' },
        GrantTokens: ['t'],
        EncryptionAlgorithm: 'SYMMETRIC_DEFAULT',
        DryRun: false,
      });
    });

    it('ignores unknown members', () => {
      expectValid('DescribeKey', { KeyId: KEY_ARN, Unknown: { deeply: ['anything', 1] }, keyId: 5 });
      expectValid('CreateKey', { Tags: [{ TagKey: 'k', TagValue: 'v', Extra: 1 }] });
    });

    it('treats JSON null as absent for optional members', () => {
      expectValid('Encrypt', { KeyId: KEY_ARN, Plaintext: b64(1), EncryptionContext: null, GrantTokens: null, EncryptionAlgorithm: null, DryRun: null });
      expectValid('GenerateRandom', { NumberOfBytes: null });
    });

    it('reports a null required member as "must not be null"', () => {
      expectValidation(
        'Encrypt',
        { KeyId: null, Plaintext: b64(1) },
        "1 validation error detected: Value null at 'keyId' failed to satisfy constraint: Member must not be null",
      );
    });

    it('accepts an epoch-seconds timestamp with a fraction', () => {
      expectValid('ImportKeyMaterial', {
        KeyId: KEY_ARN,
        ImportToken: b64(10),
        EncryptedKeyMaterial: b64(32),
        ValidTo: 1700000000.123,
        ExpirationModel: 'KEY_MATERIAL_EXPIRES',
      });
    });
  });

  describe('every operation', () => {
    it('compiles every schema, one warm-up step per operation', () => {
      const steps = validatorWarmUps();
      expect(steps).to.have.length(Object.keys(OPERATIONS).length);
      for (const step of steps) step();
    });

    // The service compiles with validateSchema off (a meta-schema compile on the first request
    // after each start): an invalid generated schema would then be trusted as it is.
    it("every generated schema is valid against ajv's meta-schema", () => {
      const checker = new Ajv({ strict: false });
      for (const keyword of ['kmsBlob', 'kmsInt32', 'kmsTimestamp']) checker.addKeyword(keyword);
      for (const [op, schema] of Object.entries(INPUT_SCHEMAS)) {
        expect(checker.validateSchema(schema), `${op}: ${checker.errorsText(checker.errors)}`).to.equal(true);
      }
      expect(checker.validateSchema({ type: 'object', properties: { a: { type: 'strin' } } })).to.equal(false);
    });

    for (const op of Object.keys(OPERATIONS) as OperationName[]) {
      it(`${op}: an empty body reports exactly the required members, in member order`, () => {
        const shape = SHAPES[OPERATIONS[op].input!]!;
        const required = new Set(shape.required ?? []);
        const missing = Object.keys(shape.members ?? {}).filter((m) => required.has(m));
        if (missing.length === 0) {
          expectValid(op, {});
          return;
        }
        const parts = missing.map(
          (m) => `Value null at '${m.charAt(0).toLowerCase()}${m.slice(1)}' failed to satisfy constraint: Member must not be null`,
        );
        expectValidation(
          op,
          {},
          `${parts.length} validation error${parts.length === 1 ? '' : 's'} detected: ${parts.join('; ')}`,
        );
      });
    }
  });
});
