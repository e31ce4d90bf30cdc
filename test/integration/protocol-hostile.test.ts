import * as fs from 'node:fs';
import * as net from 'node:net';
import * as path from 'node:path';
import { gzipSync } from 'node:zlib';
import { CreateKeyCommand, DescribeKeyCommand, type KMSClient } from '@aws-sdk/client-kms';
import { expect } from 'chai';
import { AMZ_JSON, exchange, expectError, expectOk, post, rawRequest, type RawRequest, signedHeaders } from '../support/raw-aws-json';
import { serverPerSuite, type TestServer } from '../support/server';

/** `[` × n then `]` × n: valid JSON nested deeper than any recursive renderer survives. */
const deepArray = (n: number) => '['.repeat(n) + ']'.repeat(n);

describe('AWS JSON 1.1 protocol under hostile input (raw HTTP)', function () {
  let server: TestServer;
  let client: KMSClient;
  let keyId: string;

  serverPerSuite({}, (started, kms) => ([server, client] = [started, kms]));
  before(async function () {
    keyId = (await client.send(new CreateKeyCommand({}))).KeyMetadata!.KeyId!;
  });

  const send = (request: RawRequest) => post(server.endpoint, request);
  const target = (operation: string) => `TrentService.${operation}`;

  describe('bodies', function () {
    const cases: Array<[string, string, () => string | Buffer, string]> = [
      ['invalid UTF-8 in KeyId', 'DescribeKey', () => Buffer.concat([Buffer.from('{"KeyId":"'), Buffer.from([0xff, 0xfe]), Buffer.from('"}')]), 'The request body is not valid UTF-8.'],
      [
        'an overlong UTF-8 NUL as encryption context key',
        'Encrypt',
        () => Buffer.concat([Buffer.from(`{"KeyId":"${keyId}","Plaintext":"AA==","EncryptionContext":{"`), Buffer.from([0xc0, 0x80]), Buffer.from('":"v"}}')]),
        'The request body is not valid UTF-8.',
      ],
      [
        // It would be bound to the ciphertext as U+FFFD: a context with U+FFFD, or another lone surrogate, would open it.
        'a lone surrogate escape as encryption context value',
        'Encrypt',
        () => `{"KeyId":"${keyId}","Plaintext":"AA==","EncryptionContext":{"purpose":"\\ud800"}}`,
        'The request body holds a string that is not well-formed Unicode (an unpaired surrogate escape).',
      ],
      [
        'a lone surrogate escape as encryption context key',
        'Decrypt',
        () => `{"CiphertextBlob":"AAAA","EncryptionContext":{"\\udfff":"v"}}`,
        'The request body holds a string that is not well-formed Unicode (an unpaired surrogate escape).',
      ],
      [
        'eleven grant tokens, the last a 200,000-deep array',
        'Encrypt',
        () => `{"KeyId":"${keyId}","Plaintext":"AA==","GrantTokens":[${'"t",'.repeat(10)}${deepArray(200_000)}]}`,
        "Value for 'GrantTokens[10]' is not a valid string",
      ],
    ];
    for (const [label, operation, body, message] of cases) {
      it(`${operation} with ${label}: SerializationException`, async function () {
        expect(expectError(await send({ target: target(operation), body: body() }), 'SerializationException')).to.equal(message);
      });
    }

    it('escaped surrogate pairs and other escapes are text like any other: the context they spell opens what it sealed', async function () {
      const context = '"EncryptionContext":{"\\ud83d\\ude00\\u00e9":"\\uD834\\uDD1E"}';
      const sealed = expectOk(await send({ target: target('Encrypt'), body: `{"KeyId":"${keyId}","Plaintext":"AA==",${context}}` }));
      const opened = expectOk(await send({ target: target('Decrypt'), body: `{"CiphertextBlob":"${sealed.CiphertextBlob as string}","EncryptionContext":{"😀é":"𝄞"}}` }));
      expect(opened.Plaintext).to.equal('AA==');
    });

    it('a gzip body (signed as sent): SerializationException, not a signature mismatch; identity is plain', async function () {
      const body = gzipSync('{"NumberOfBytes":4}');
      const message = expectError(await send({ target: target('GenerateRandom'), body, headers: { 'content-encoding': 'gzip' } }), 'SerializationException');
      expect(message).to.include('Content-Encoding');
      expectOk(await send({ target: target('GenerateRandom'), body: '{"NumberOfBytes":4}', headers: { 'content-encoding': 'identity' } }));
    });
  });

  describe('Content-Type', function () {
    const accepted: Array<[string | null, string]> = [
      [null, AMZ_JSON],
      ['', AMZ_JSON],
      ['APPLICATION/X-AMZ-JSON-1.1', AMZ_JSON],
      ['application/x-amz-json-1.0', AMZ_JSON],
      ['application/json; charset=utf-8', 'application/json'],
    ];
    for (const [contentType, answered] of accepted) {
      it(`${contentType === null ? 'none' : contentType || 'empty'}: served, answered as ${answered}`, async function () {
        // A Buffer body: fetch would label a string body text/plain.
        expectOk(await send({ target: target('GenerateRandom'), body: Buffer.from('{"NumberOfBytes":4}'), contentType }), answered);
      });
    }
    for (const contentType of ['text/plain', 'application/octet-stream', 'application/x-www-form-urlencoded']) {
      it(`${contentType}: UnknownOperationException, as AWS`, async function () {
        const message = expectError(await send({ target: target('GenerateRandom'), body: '{"NumberOfBytes":4}', contentType }), 'UnknownOperationException');
        expect(message).to.include(contentType);
      });
    }
  });

  describe('connections', function () {
    /** A signed request as raw bytes, with `extra` header lines after the signed ones. */
    async function raw(operation: string, body: string, extra: Array<[string, string]> = []): Promise<string> {
      const headers = await signedHeaders(server.endpoint, { target: target(operation), body });
      return rawRequest([...Object.entries(headers), ...extra], body);
    }

    it('a repeated X-Amz-Date: IncompleteSignatureException with AWS text', async function () {
      const headers = await signedHeaders(server.endpoint, { target: target('ListKeys'), body: '{}' });
      const date = headers['x-amz-date']!;
      const [res] = await exchange(server.endpoint, rawRequest([...Object.entries(headers), ['X-Amz-Date', date]], '{}'), 1);
      expect(res!.status).to.equal(400);
      expect(JSON.parse(res!.body)).to.deep.equal({
        __type: 'IncompleteSignatureException',
        message: `Date must be in ISO-8601 'basic format'. Got '${date}, ${date}'. See http://en.wikipedia.org/wiki/ISO_8601`,
      });
    });

    it('a declared Content-Length over the limit is answered at once, before any body arrives', async function () {
      const headers = await signedHeaders(server.endpoint, { target: target('ListKeys'), body: '{}' });
      const [res] = await exchange(server.endpoint, rawRequest(Object.entries(headers), '{', 50 * 1024 * 1024), 1);
      expect(res!.status).to.equal(400);
      expect(JSON.parse(res!.body)).to.deep.equal({ __type: 'ValidationException', message: 'Request body exceeds the maximum of 1048576 bytes.' });
    });

    it('pipelined requests on one connection are answered in order, a bad one in between included', async function () {
      const bytes = (await raw('GenerateRandom', '{"NumberOfBytes":1}')) + (await raw('GenerateRandom', 'not json')) + (await raw('GenerateRandom', '{"NumberOfBytes":2}'));
      const answers = await exchange(server.endpoint, bytes, 3);
      expect(answers.map((a) => a.status)).to.deep.equal([200, 400, 200]);
      expect(JSON.parse(answers[1]!.body).__type).to.equal('SerializationException');
      expect(Buffer.from(JSON.parse(answers[2]!.body).Plaintext, 'base64')).to.have.lengthOf(2);
    });

    it('a client that hangs up before the answer: the key is made in full and its audit record written', async function () {
      const marker = `hung-up-${process.pid}-${Date.now()}`;
      const bytes = await raw('CreateKey', JSON.stringify({ Description: marker }));
      const url = new URL(server.endpoint);
      await new Promise<void>((resolve, reject) => {
        const socket = net.connect(Number(url.port), url.hostname, () => socket.end(bytes, () => (socket.destroy(), resolve())));
        socket.on('error', reject);
      });
      const auditDir = path.join(server.dataDir, 'audit');
      const record = async (): Promise<{ errorCode?: string; responseElements?: { keyMetadata: { keyId: string } } } | undefined> => {
        for (const file of fs.readdirSync(auditDir).filter((f) => f.startsWith('trail-'))) {
          const line = fs.readFileSync(path.join(auditDir, file), 'utf8').split('\n').find((l) => l.includes(marker));
          if (line) return JSON.parse(line);
        }
        return undefined;
      };
      const deadline = Date.now() + 20_000;
      let found = await record();
      while (!found && Date.now() < deadline) {
        await new Promise((r) => setTimeout(r, 50));
        found = await record();
      }
      expect(found, 'audit record of the abandoned CreateKey').to.not.equal(undefined);
      expect(found!.errorCode).to.equal(undefined);
      const described = await client.send(new DescribeKeyCommand({ KeyId: found!.responseElements!.keyMetadata.keyId }));
      expect(described.KeyMetadata).to.include({ Description: marker, KeyState: 'Enabled' });
    });
  });
});
