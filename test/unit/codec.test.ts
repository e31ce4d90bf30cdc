import { expect } from 'chai';
import type { KeyMetadata, ListAliasesResponse, RotationsListEntry } from '../../src/model/generated/types';
import { decodeInput, encodeOutput } from '../../src/wire/aws-json/codec';
import { validateInput } from '../../src/wire/aws-json/validate';

const KEY_ID = '1234abcd-12ab-34cd-56ef-1234567890ab';
const KEY_ARN = `arn:aws:kms:us-east-1:111122223333:key/${KEY_ID}`;

/** What the server does: JSON text in, validate, decode. */
function fromWire(op: Parameters<typeof validateInput>[0], json: string): unknown {
  const body = JSON.parse(json) as Record<string, unknown>;
  validateInput(op, body);
  return decodeInput(op, body);
}

/** What the server does on the way out: encode, JSON text, and what a client parses. */
function toWire(value: Record<string, unknown>): unknown {
  return JSON.parse(JSON.stringify(value));
}

describe('wire/aws-json/codec', () => {
  describe('decodeInput', () => {
    it('turns blobs into Buffers and keeps other members', () => {
      const body = {
        KeyId: KEY_ARN,
        Plaintext: Buffer.from('hello').toString('base64'),
        EncryptionContext: { purpose: 'test' },
        GrantTokens: ['t1'],
        EncryptionAlgorithm: 'SYMMETRIC_DEFAULT',
        DryRun: false,
      };
      const input = decodeInput('Encrypt', body);
      expect(Buffer.isBuffer(input.Plaintext)).to.equal(true);
      expect(input.Plaintext.toString()).to.equal('hello');
      expect(input.KeyId).to.equal(KEY_ARN);
      expect(input.EncryptionContext).to.deep.equal({ purpose: 'test' });
      expect(input.GrantTokens).to.deep.equal(['t1']);
      expect(input.EncryptionAlgorithm).to.equal('SYMMETRIC_DEFAULT');
      expect(input.DryRun).to.equal(false);
    });

    it('returns a new object, does not mutate the body, drops unknown members and nulls', () => {
      const body: Record<string, unknown> = { KeyId: KEY_ARN, Plaintext: 'QUJD', Bogus: 1, EncryptionContext: null };
      const snapshot = JSON.stringify(body);
      const input = decodeInput('Encrypt', body) as unknown as Record<string, unknown>;
      expect(input).not.to.equal(body);
      expect(JSON.stringify(body)).to.equal(snapshot);
      expect(Object.keys(input)).to.deep.equal(['KeyId', 'Plaintext']);
      expect((input['Plaintext'] as Buffer).toString()).to.equal('ABC');
    });

    it('gives sensitive blobs (Plaintext) their own memory, not a slice of the shared pool', () => {
      const input = decodeInput('Encrypt', { KeyId: 'k', Plaintext: Buffer.from('secret!').toString('base64') });
      expect(input.Plaintext.toString()).to.equal('secret!');
      expect(input.Plaintext.byteOffset).to.equal(0);
      expect(input.Plaintext.buffer.byteLength).to.equal(input.Plaintext.length);
      const unpadded = decodeInput('GenerateMac', { KeyId: 'k', MacAlgorithm: 'HMAC_SHA_256', Message: 'QUI' });
      expect(unpadded.Message.toString()).to.equal('AB');
      expect(unpadded.Message.buffer.byteLength).to.equal(2);
    });

    it('decodes unpadded base64 and empty blobs', () => {
      expect(decodeInput('Encrypt', { KeyId: 'k', Plaintext: 'QQ' }).Plaintext).to.deep.equal(Buffer.from('A'));
      expect(decodeInput('Decrypt', { CiphertextBlob: '' }).CiphertextBlob).to.deep.equal(Buffer.alloc(0));
    });

    it('decodes several blobs of one request', () => {
      const input = decodeInput('VerifyMac', {
        Message: Buffer.from('msg').toString('base64'),
        KeyId: KEY_ARN,
        MacAlgorithm: 'HMAC_SHA_256',
        Mac: Buffer.from([1, 2, 3]).toString('base64'),
      });
      expect(input.Message.toString()).to.equal('msg');
      expect([...input.Mac]).to.deep.equal([1, 2, 3]);
    });

    it('decodes blobs in nested structures', () => {
      const doc = Buffer.from('attestation document');
      const input = decodeInput('Decrypt', {
        CiphertextBlob: Buffer.from([9, 9]).toString('base64'),
        Recipient: { KeyEncryptionAlgorithm: 'RSAES_OAEP_SHA_256', AttestationDocument: doc.toString('base64'), Junk: true },
      });
      expect([...input.CiphertextBlob!]).to.deep.equal([9, 9]);
      expect(input.Recipient).to.deep.equal({ KeyEncryptionAlgorithm: 'RSAES_OAEP_SHA_256', AttestationDocument: doc });
    });

    it('decodes timestamps (epoch seconds, fraction allowed) into Dates', () => {
      const input = decodeInput('ImportKeyMaterial', {
        KeyId: KEY_ARN,
        ImportToken: 'AAEC',
        EncryptedKeyMaterial: 'AwQF',
        ValidTo: 1700000000.123,
        ExpirationModel: 'KEY_MATERIAL_EXPIRES',
      });
      expect(input.ValidTo).to.be.instanceOf(Date);
      expect(input.ValidTo!.getTime()).to.equal(1700000000123);
      expect([...input.ImportToken]).to.deep.equal([0, 1, 2]);
      expect([...input.EncryptedKeyMaterial]).to.deep.equal([3, 4, 5]);
      expect(decodeInput('ImportKeyMaterial', { KeyId: 'k', ImportToken: 'AA', EncryptedKeyMaterial: 'AA', ValidTo: 1700000000 }).ValidTo!.toISOString()).to.equal(
        '2023-11-14T22:13:20.000Z',
      );
    });

    it('keeps only model members inside lists of structures', () => {
      const input = decodeInput('CreateKey', { Tags: [{ TagKey: 'a', TagValue: 'b', Extra: 1 }, { TagKey: 'c', TagValue: '' }] });
      expect(input.Tags).to.deep.equal([
        { TagKey: 'a', TagValue: 'b' },
        { TagKey: 'c', TagValue: '' },
      ]);
    });

    it('keeps map keys such as "__proto__" as plain data', () => {
      const input = fromWire('Encrypt', `{"KeyId":"k","Plaintext":"QQ==","EncryptionContext":{"__proto__":"x","a":"b"}}`) as {
        EncryptionContext: Record<string, string>;
      };
      expect(Object.keys(input.EncryptionContext)).to.deep.equal(['__proto__', 'a']);
      expect(Object.getPrototypeOf(input.EncryptionContext)).to.equal(Object.prototype);
      expect(({} as Record<string, unknown>)['x']).to.equal(undefined);
    });

    it('gives an empty object for an empty body', () => {
      expect(decodeInput('ListKeys', {})).to.deep.equal({});
      expect(decodeInput('GenerateRandom', {})).to.deep.equal({});
    });
  });

  describe('encodeOutput', () => {
    it('encodes Buffers as base64, keeps member order, drops undefined', () => {
      const out = encodeOutput('Encrypt', {
        CiphertextBlob: Buffer.from([0xff, 0xfe, 0xfd]),
        EncryptionAlgorithm: 'SYMMETRIC_DEFAULT',
        KeyId: KEY_ARN,
      });
      expect(Object.keys(out)).to.deep.equal(['CiphertextBlob', 'EncryptionAlgorithm', 'KeyId']);
      expect(out).to.deep.equal({ CiphertextBlob: '//79', EncryptionAlgorithm: 'SYMMETRIC_DEFAULT', KeyId: KEY_ARN });

      const dec = encodeOutput('GenerateDataKey', { CiphertextBlob: Buffer.from('c'), Plaintext: undefined, KeyId: KEY_ARN });
      expect(Object.keys(dec)).to.deep.equal(['CiphertextBlob', 'KeyId']);
    });

    it('encodes plain Uint8Arrays (views with offsets) as base64', () => {
      const backing = new Uint8Array([0, 1, 2, 3, 4, 5]);
      const view = backing.subarray(2, 5);
      const out = encodeOutput('GenerateRandom', { Plaintext: view as unknown as Buffer });
      expect(out).to.deep.equal({ Plaintext: Buffer.from([2, 3, 4]).toString('base64') });
    });

    it('drops members the model does not define', () => {
      const out = encodeOutput('Sign', {
        KeyId: KEY_ARN,
        Signature: Buffer.from('sig'),
        SigningAlgorithm: 'ECDSA_SHA_256',
        internalHandle: 42,
      } as never);
      expect(out).to.deep.equal({ KeyId: KEY_ARN, Signature: Buffer.from('sig').toString('base64'), SigningAlgorithm: 'ECDSA_SHA_256' });
    });

    it('encodes KeyMetadata dates as epoch seconds with millisecond fraction', () => {
      const metadata: KeyMetadata = {
        AWSAccountId: '111122223333',
        KeyId: KEY_ID,
        Arn: KEY_ARN,
        CreationDate: new Date(1700000000123),
        Enabled: false,
        Description: '',
        KeyUsage: 'ENCRYPT_DECRYPT',
        KeyState: 'PendingDeletion',
        DeletionDate: new Date(1702592000000),
        Origin: 'AWS_KMS',
        KeyManager: 'CUSTOMER',
        CustomerMasterKeySpec: 'SYMMETRIC_DEFAULT',
        KeySpec: 'SYMMETRIC_DEFAULT',
        EncryptionAlgorithms: ['SYMMETRIC_DEFAULT'],
        MultiRegion: false,
        PendingDeletionWindowInDays: 30,
      };
      const out = encodeOutput('DescribeKey', { KeyMetadata: metadata });
      const km = out['KeyMetadata'] as Record<string, unknown>;
      expect(km['CreationDate']).to.equal(1700000000.123);
      expect(km['DeletionDate']).to.equal(1702592000);
      expect(Object.keys(km)).to.deep.equal(Object.keys(metadata));
      expect(JSON.stringify(out)).to.contain('"CreationDate":1700000000.123');
      expect(km['EncryptionAlgorithms']).to.deep.equal(['SYMMETRIC_DEFAULT']);
      // the input object is left alone
      expect(metadata.CreationDate).to.be.instanceOf(Date);
    });

    it('encodes nested multi-region configuration and XKS structures untouched except for dates', () => {
      const out = toWire(
        encodeOutput('CreateKey', {
          KeyMetadata: {
            KeyId: `mrk-${KEY_ID}`,
            CreationDate: new Date(0),
            MultiRegion: true,
            MultiRegionConfiguration: {
              MultiRegionKeyType: 'PRIMARY',
              PrimaryKey: { Arn: KEY_ARN, Region: 'us-east-1' },
              ReplicaKeys: [],
            },
          },
        }),
      );
      expect(out).to.deep.equal({
        KeyMetadata: {
          KeyId: `mrk-${KEY_ID}`,
          CreationDate: 0,
          MultiRegion: true,
          MultiRegionConfiguration: { MultiRegionKeyType: 'PRIMARY', PrimaryKey: { Arn: KEY_ARN, Region: 'us-east-1' }, ReplicaKeys: [] },
        },
      });
    });

    it('encodes lists of structures with timestamps (ListAliases)', () => {
      const response: ListAliasesResponse = {
        Aliases: [
          {
            AliasName: 'alias/a',
            AliasArn: 'arn:aws:kms:us-east-1:111122223333:alias/a',
            TargetKeyId: KEY_ID,
            CreationDate: new Date(1700000000500),
            LastUpdatedDate: new Date(1700000001000),
          },
          { AliasName: 'alias/aws/s3', AliasArn: 'arn:aws:kms:us-east-1:111122223333:alias/aws/s3' },
        ],
        Truncated: false,
      };
      const out = toWire(encodeOutput('ListAliases', response));
      expect(out).to.deep.equal({
        Aliases: [
          {
            AliasName: 'alias/a',
            AliasArn: 'arn:aws:kms:us-east-1:111122223333:alias/a',
            TargetKeyId: KEY_ID,
            CreationDate: 1700000000.5,
            LastUpdatedDate: 1700000001,
          },
          { AliasName: 'alias/aws/s3', AliasArn: 'arn:aws:kms:us-east-1:111122223333:alias/aws/s3' },
        ],
        Truncated: false,
      });
    });

    it('encodes ListKeyRotations and GetKeyLastUsage nested dates', () => {
      const rotation: RotationsListEntry = {
        KeyId: KEY_ID,
        RotationDate: new Date(1700000000000),
        RotationType: 'ON_DEMAND',
        ValidTo: undefined,
      };
      expect(toWire(encodeOutput('ListKeyRotations', { Rotations: [rotation], Truncated: false }))).to.deep.equal({
        Rotations: [{ KeyId: KEY_ID, RotationDate: 1700000000, RotationType: 'ON_DEMAND' }],
        Truncated: false,
      });
      expect(
        toWire(
          encodeOutput('GetKeyLastUsage', {
            KeyId: KEY_ARN,
            KeyLastUsage: { Operation: 'Encrypt', Timestamp: new Date(1700000000001), KmsRequestId: 'r' },
            TrackingStartDate: new Date(1690000000000),
          }),
        ),
      ).to.deep.equal({
        KeyId: KEY_ARN,
        KeyLastUsage: { Operation: 'Encrypt', Timestamp: 1700000000.001, KmsRequestId: 'r' },
        TrackingStartDate: 1690000000,
      });
    });

    it('encodes GetParametersForImport (blobs and a timestamp together)', () => {
      const out = encodeOutput('GetParametersForImport', {
        KeyId: KEY_ARN,
        ImportToken: Buffer.from([1]),
        PublicKey: Buffer.from([2]),
        ParametersValidTo: new Date(1700086400000),
      });
      expect(out).to.deep.equal({ KeyId: KEY_ARN, ImportToken: 'AQ==', PublicKey: 'Ag==', ParametersValidTo: 1700086400 });
    });

    it('gives {} for operations without output', () => {
      expect(encodeOutput('DisableKey', {})).to.deep.equal({});
      expect(encodeOutput('TagResource', {})).to.deep.equal({});
      expect(encodeOutput('ConnectCustomKeyStore', {})).to.deep.equal({});
    });
  });

  describe('round trips', () => {
    it('ciphertext: encodeOutput(Encrypt) → JSON → validate + decodeInput(Decrypt)', () => {
      const ciphertext = Buffer.from(Array.from({ length: 300 }, (_, i) => i & 0xff));
      const wire = JSON.stringify(encodeOutput('Encrypt', { CiphertextBlob: ciphertext, KeyId: KEY_ARN, EncryptionAlgorithm: 'SYMMETRIC_DEFAULT' }));
      const response = JSON.parse(wire) as { CiphertextBlob: string };
      const input = fromWire('Decrypt', JSON.stringify({ CiphertextBlob: response.CiphertextBlob, KeyId: KEY_ARN })) as { CiphertextBlob: Buffer };
      expect(input.CiphertextBlob.equals(ciphertext)).to.equal(true);
    });

    it('blob sizes 0..64 survive encode → decode', () => {
      for (let n = 1; n <= 64; n++) {
        const bytes = Buffer.from(Array.from({ length: n }, (_, i) => (i * 37 + n) & 0xff));
        const wire = toWire(encodeOutput('GenerateRandom', { Plaintext: bytes })) as { Plaintext: string };
        const back = fromWire('Encrypt', JSON.stringify({ KeyId: 'k', Plaintext: wire.Plaintext })) as { Plaintext: Buffer };
        expect(back.Plaintext.equals(bytes), `n=${n}`).to.equal(true);
      }
    });

    it('timestamps: encodeOutput date → JSON → decodeInput date (millisecond precision)', () => {
      for (const ms of [0, 1, 999, 1700000000123, 1700000000999, 4102444800001]) {
        const wire = toWire(encodeOutput('ScheduleKeyDeletion', { KeyId: KEY_ARN, DeletionDate: new Date(ms) })) as { DeletionDate: number };
        const input = fromWire(
          'ImportKeyMaterial',
          JSON.stringify({ KeyId: KEY_ARN, ImportToken: 'AA==', EncryptedKeyMaterial: 'AA==', ValidTo: wire.DeletionDate }),
        ) as { ValidTo: Date };
        expect(input.ValidTo.getTime(), `ms=${ms}`).to.equal(ms);
      }
    });
  });
});
