import { CreateKeyCommand, type KMSClient } from '@aws-sdk/client-kms';
import { expect } from 'chai';
import { expectError, expectOk, post as postRaw, type RawRequest, type RawResponse, STACK_TRACE, UUID } from '../support/raw-aws-json';
import { serverPerSuite, type TestServer } from '../support/server';

const REGION = 'us-east-1';

describe('AWS JSON 1.1 protocol (raw HTTP)', function () {
  let server: TestServer;
  let client: KMSClient;
  let keyId: string;

  serverPerSuite({}, (started, kms) => ([server, client] = [started, kms]));
  before(async function () {
    const out = await client.send(new CreateKeyCommand({}));
    keyId = out.KeyMetadata!.KeyId!;
  });

  const post = (request: RawRequest): Promise<RawResponse> => postRaw(server.endpoint, request);

  function call(operation: string, body: unknown, extra: Omit<RawRequest, 'target' | 'body'> = {}): Promise<RawResponse> {
    return post({ target: `TrentService.${operation}`, body: JSON.stringify(body), ...extra });
  }

  describe('successful responses', function () {
    it('carry x-amzn-RequestId and the AWS JSON content type', async function () {
      const out = expectOk(await call('GenerateRandom', { NumberOfBytes: 16 }));
      expect(Object.keys(out)).to.deep.equal(['Plaintext']);
      expect(Buffer.from(out.Plaintext as string, 'base64')).to.have.lengthOf(16);
    });

    it('answer with application/json when the request used application/json', async function () {
      const out = expectOk(await call('GenerateRandom', { NumberOfBytes: 8 }, { contentType: 'application/json' }), 'application/json');
      expect(Buffer.from(out.Plaintext as string, 'base64')).to.have.lengthOf(8);
    });

    it('give every request its own request id', async function () {
      const a = await call('GenerateRandom', { NumberOfBytes: 1 });
      const b = await call('GenerateRandom', { NumberOfBytes: 1 });
      const c = await call('DescribeKey', {});
      const ids = [a, b, c].map((r) => r.headers.get('x-amzn-requestid'));
      expect(new Set(ids).size).to.equal(3);
    });

    it('encrypt and decrypt with base64 blobs on the wire', async function () {
      const plaintext = Buffer.from('wire-level round trip');
      const enc = expectOk(await call('Encrypt', { KeyId: keyId, Plaintext: plaintext.toString('base64') }));
      expect(enc.KeyId).to.equal(`arn:aws:kms:${REGION}:111122223333:key/${keyId}`);
      expect(enc.EncryptionAlgorithm).to.equal('SYMMETRIC_DEFAULT');
      expect(enc.CiphertextBlob).to.be.a('string');
      const dec = expectOk(await call('Decrypt', { CiphertextBlob: enc.CiphertextBlob }));
      expect(Buffer.from(dec.Plaintext as string, 'base64').equals(plaintext)).to.equal(true);
    });
  });

  describe('operation dispatch', function () {
    it('answers UnknownOperationException without an X-Amz-Target header', async function () {
      const message = expectError(await post({ target: null, body: '{}' }), 'UnknownOperationException');
      expect(message).to.not.equal('');
    });

    for (const target of [
      'TrentService.NoSuchOperation',
      'TrentService.',
      'KMS.DescribeKey',
      'DescribeKey',
      'TrentService.__proto__',
      'TrentService.constructor',
      'TrentService.hasOwnProperty',
    ]) {
      it(`answers UnknownOperationException for X-Amz-Target ${target}`, async function () {
        expectError(await post({ target, body: '{}' }), 'UnknownOperationException');
      });
    }

  });

  describe('request bodies that cannot be deserialized', function () {
    const unparsable = ['{', '{"NumberOfBytes": 4', 'not json at all', '{"a":1}}', "{'NumberOfBytes': 4}"];
    for (const body of unparsable) {
      it(`answers SerializationException for the unparsable body ${JSON.stringify(body)}`, async function () {
        const message = expectError(await post({ target: 'TrentService.GenerateRandom', body }), 'SerializationException');
        expect(message).to.not.equal('');
      });
    }

    for (const body of ['[]', '[{"NumberOfBytes": 4}]', '"text"', '42', 'null', 'true']) {
      it(`answers SerializationException for the JSON non-object body ${body}`, async function () {
        expectError(await post({ target: 'TrentService.GenerateRandom', body }), 'SerializationException');
      });
    }

    it('answers SerializationException for NumberOfBytes "ten"', async function () {
      const message = expectError(await call('GenerateRandom', { NumberOfBytes: 'ten' }), 'SerializationException');
      expect(message).to.include('NumberOfBytes');
    });

    const wrongTypes: Array<[string, string, Record<string, unknown>]> = [
      ['Encrypt', 'Plaintext', { KeyId: 'placeholder', Plaintext: 12345 }],
      ['Encrypt', 'KeyId', { KeyId: { id: 'x' }, Plaintext: 'AAAA' }],
      ['Encrypt', 'EncryptionContext', { KeyId: 'placeholder', Plaintext: 'AAAA', EncryptionContext: ['a', 'b'] }],
      ['ListKeys', 'Limit', { Limit: true }],
      ['GenerateRandom', 'NumberOfBytes', { NumberOfBytes: 1.5 }],
      ['CreateKey', 'Tags', { Tags: { TagKey: 'a', TagValue: 'b' } }],
      ['ImportKeyMaterial', 'ValidTo', { KeyId: 'placeholder', ImportToken: 'AAAA', EncryptedKeyMaterial: 'AAAA', ExpirationModel: 'KEY_MATERIAL_EXPIRES', ValidTo: 1e20 }],
    ];
    for (const [operation, member, body] of wrongTypes) {
      it(`answers SerializationException for ${operation} with ${member} of the wrong JSON type`, async function () {
        const message = expectError(await call(operation, body), 'SerializationException');
        expect(message).to.include(member);
      });
    }

    for (const plaintext of ['!!!not base64!!!', 'ab$c', 'AAAA=A==']) {
      it(`answers SerializationException for the invalid base64 Plaintext ${JSON.stringify(plaintext)}`, async function () {
        const message = expectError(await call('Encrypt', { KeyId: keyId, Plaintext: plaintext }), 'SerializationException');
        expect(message).to.include('Plaintext');
      });
    }
  });

  describe('validation messages', function () {
    it('reports a missing required member as AWS does', async function () {
      const message = expectError(await call('DescribeKey', {}), 'ValidationException');
      expect(message).to.equal("1 validation error detected: Value null at 'keyId' failed to satisfy constraint: Member must not be null");
    });

    it('treats an explicit JSON null like a missing member', async function () {
      const message = expectError(await call('DescribeKey', { KeyId: null }), 'ValidationException');
      expect(message).to.equal("1 validation error detected: Value null at 'keyId' failed to satisfy constraint: Member must not be null");
    });

    it('an empty body is an empty request', async function () {
      const message = expectError(await post({ target: 'TrentService.DescribeKey', body: '' }), 'ValidationException');
      expect(message).to.equal("1 validation error detected: Value null at 'keyId' failed to satisfy constraint: Member must not be null");
    });

    it('reports two violations at once, joined with "; "', async function () {
      const message = expectError(await call('Encrypt', {}), 'ValidationException');
      const prefix = '2 validation errors detected: ';
      expect(message.startsWith(prefix), message).to.equal(true);
      expect(message.slice(prefix.length).split('; ')).to.have.members([
        "Value null at 'keyId' failed to satisfy constraint: Member must not be null",
        "Value null at 'plaintext' failed to satisfy constraint: Member must not be null",
      ]);
    });

    it('reports a missing member and a too long one together', async function () {
      const message = expectError(
        await call('Encrypt', { Plaintext: Buffer.alloc(4097).toString('base64') }),
        'ValidationException',
      );
      const prefix = '2 validation errors detected: ';
      expect(message.startsWith(prefix), message).to.equal(true);
      expect(message.slice(prefix.length).split('; ')).to.have.members([
        "Value null at 'keyId' failed to satisfy constraint: Member must not be null",
        "Value at 'plaintext' failed to satisfy constraint: Member must have length less than or equal to 4096",
      ]);
    });

    it('GenerateRandom NumberOfBytes 0 (recorded AWS text)', async function () {
      const message = expectError(await call('GenerateRandom', { NumberOfBytes: 0 }), 'ValidationException');
      expect(message).to.equal(
        "1 validation error detected: Value '0' at 'numberOfBytes' failed to satisfy constraint: Member must have value greater than or equal to 1",
      );
    });

    it('GenerateRandom NumberOfBytes 1025 (recorded AWS text)', async function () {
      const message = expectError(await call('GenerateRandom', { NumberOfBytes: 1025 }), 'ValidationException');
      expect(message).to.equal(
        "1 validation error detected: Value '1025' at 'numberOfBytes' failed to satisfy constraint: Member must have value less than or equal to 1024",
      );
    });

    it('GenerateRandom without NumberOfBytes (recorded AWS text)', async function () {
      const message = expectError(await call('GenerateRandom', {}), 'ValidationException');
      expect(message).to.equal('NumberOfBytes is required.');
    });

    it('GenerateRandom accepts the bounds 1 and 1024', async function () {
      for (const n of [1, 1024]) {
        const out = expectOk(await call('GenerateRandom', { NumberOfBytes: n }));
        expect(Buffer.from(out.Plaintext as string, 'base64')).to.have.lengthOf(n);
      }
    });

    it('Encrypt with 4097 bytes of plaintext (recorded AWS text)', async function () {
      const message = expectError(
        await call('Encrypt', { KeyId: keyId, Plaintext: Buffer.alloc(4097, 7).toString('base64') }),
        'ValidationException',
      );
      expect(message).to.equal(
        "1 validation error detected: Value at 'plaintext' failed to satisfy constraint: Member must have length less than or equal to 4096",
      );
    });

    it('Encrypt with an empty plaintext (recorded AWS text)', async function () {
      const message = expectError(await call('Encrypt', { KeyId: keyId, Plaintext: '' }), 'ValidationException');
      expect(message).to.equal(
        "1 validation error detected: Value at 'plaintext' failed to satisfy constraint: Member must have length greater than or equal to 1",
      );
    });

    it('Encrypt accepts exactly 4096 bytes', async function () {
      const out = expectOk(await call('Encrypt', { KeyId: keyId, Plaintext: Buffer.alloc(4096, 7).toString('base64') }));
      expect(out.CiphertextBlob).to.be.a('string');
    });

    it('never echoes plaintext into a validation message', async function () {
      const secret = Buffer.alloc(4097, 0x41); // base64 "QUFB..."
      const encoded = secret.toString('base64');
      const res = await call('Encrypt', { KeyId: keyId, Plaintext: encoded });
      expectError(res, 'ValidationException');
      expect(res.text).to.not.include(encoded.slice(0, 64));
    });
  });

  describe('oversized bodies', function () {
    const oversized = () => JSON.stringify({ KeyId: 'alias/none', Plaintext: Buffer.alloc(800 * 1024, 1).toString('base64') });

    it('answers a body larger than 1 MiB with an AWS JSON ValidationException', async function () {
      const body = oversized();
      expect(Buffer.byteLength(body)).to.be.greaterThan(1024 * 1024);
      const message = expectError(await post({ target: 'TrentService.Encrypt', body }), 'ValidationException');
      expect(message).to.not.equal('');
    });

    it('does the same for a chunked body without Content-Length, in the request content type', async function () {
      const res = await post({ target: 'TrentService.Encrypt', body: oversized(), chunked: true, contentType: 'application/json' });
      expectError(res, 'ValidationException', 400, 'application/json');
    });

    it('keeps serving after an oversized body', async function () {
      await post({ target: 'TrentService.Encrypt', body: oversized() });
      expectOk(await call('GenerateRandom', { NumberOfBytes: 4 }));
    });
  });

  describe('error responses', function () {
    it('use application/json when the request used application/json', async function () {
      const res = await post({ target: 'TrentService.DescribeKey', body: '{}', contentType: 'application/json' });
      expectError(res, 'ValidationException', 400, 'application/json');
      const bad = await post({ target: 'TrentService.DescribeKey', body: '{', contentType: 'application/json' });
      expectError(bad, 'SerializationException', 400, 'application/json');
      const unknown = await post({ target: 'TrentService.Nope', body: '{}', contentType: 'application/json' });
      expectError(unknown, 'UnknownOperationException', 400, 'application/json');
    });

    it('operation errors keep the envelope too (NotFoundException)', async function () {
      const message = expectError(await call('DescribeKey', { KeyId: 'fake-key-id' }), 'NotFoundException');
      expect(message).to.equal("Invalid keyId 'fake-key-id'");
    });

    it('never contain a stack trace, whatever the malformed request', async function () {
      const requests: RawRequest[] = [
        { target: 'TrentService.Encrypt', body: '{"KeyId":' },
        { target: 'TrentService.Encrypt', body: `{"KeyId":"x","Plaintext":"AA==","GrantTokens":${'['.repeat(5000)}${']'.repeat(5000)}}` },
        { target: 'TrentService.Encrypt', body: `{"KeyId":"x","Plaintext":"AA==","EncryptionContext":${'{"a":'.repeat(2000)}1${'}'.repeat(2000)}}` },
        { target: 'TrentService.Encrypt', body: '{"KeyId":"x","Plaintext":"AA==","EncryptionContext":{"__proto__":{"a":1}}}' },
        { target: 'TrentService.CreateKey', body: '{"Tags":[null,{"TagKey":null}]}' },
        { target: 'TrentService.ListKeys', body: '{"Limit":1e400}' },
        { target: 'TrentService.ListKeys', body: '{"Marker":"\\u0000\\u0001"}' },
        { target: 'TrentService.DescribeKey', body: '{"KeyId":"arn:aws:kms:::"}' },
        { target: 'TrentService.DescribeKey', body: `{"KeyId":"${'a'.repeat(3000)}"}` },
        { target: 'TrentService.Decrypt', body: '{"CiphertextBlob":"AAAA"}' },
        { target: 'TrentService.GenerateRandom', body: Buffer.from([0xff, 0xfe, 0x00, 0x7b]) },
        { target: 'TrentService.GenerateRandom', body: '{"NumberOfBytes":4}', headers: { 'content-encoding': 'br' } },
        { target: 'TrentService.GenerateRandom', body: 'not gzip', headers: { 'content-encoding': 'gzip' } },
        { target: null, body: '{' },
        { target: 'TrentService.GenerateRandom', body: '{}', sign: false },
      ];
      for (const request of requests) {
        const res = await post(request);
        const label = `${request.target} ${String(request.body).slice(0, 60)}`;
        expect(res.status, label).to.be.within(400, 499);
        expect(res.text, label).to.not.match(STACK_TRACE);
        const body = JSON.parse(res.text) as Record<string, unknown>;
        expect(body.__type, label).to.be.a('string').and.not.equal('');
        expect(body.__type, label).to.not.equal('KMSInternalException');
        expect(res.headers.get('x-amzn-requestid'), label).to.match(UUID);
      }
      // The server is still healthy afterwards.
      expectOk(await call('GenerateRandom', { NumberOfBytes: 1 }));
    });
  });

  describe('authentication', function () {
    it('answers an unsigned request (no Authorization header) with 403 MissingAuthenticationTokenException', async function () {
      const res = await post({ target: 'TrentService.ListKeys', body: '{}', sign: false });
      const message = expectError(res, 'MissingAuthenticationTokenException', 403);
      expect(message).to.not.equal('');
    });

    it('checks authentication before it looks at the operation or the body', async function () {
      expectError(await post({ target: null, body: '{', sign: false }), 'MissingAuthenticationTokenException', 403);
    });
  });

  describe('other paths', function () {
    it('GET /health answers 200', async function () {
      const res = await fetch(`${server.endpoint}/health`);
      expect(res.status).to.equal(200);
      const body = (await res.json()) as Record<string, unknown>;
      expect(body.status).to.equal('ok');
    });

    it('GET /nonexistent answers 404 with a JSON error', async function () {
      const res = await fetch(`${server.endpoint}/nonexistent`);
      const text = await res.text();
      expect(res.status).to.equal(404);
      expect(res.headers.get('content-type')).to.match(/^application\/json/);
      expect(text).to.not.match(STACK_TRACE);
      expect(text).to.not.match(/<html|<!DOCTYPE/i);
      const body = JSON.parse(text) as Record<string, unknown>;
      expect(body.__type).to.be.a('string').and.not.equal('');
      expect(body.message).to.be.a('string').and.not.equal('');
    });
  });
});
