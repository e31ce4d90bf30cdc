/**
 * Raw AWS JSON 1.1 requests for protocol tests: headers and body exactly as given, signed with the
 * AWS SDK's own SigV4 signer so that only the content is hostile, and the checks of AWS's error
 * envelope. `exchange` writes bytes to a socket as they are (repeated headers, pipelining).
 */
import * as net from 'node:net';
import { Hash } from '@smithy/hash-node';
import { SignatureV4 } from '@smithy/signature-v4';
import { expect } from 'chai';

export const AMZ_JSON = 'application/x-amz-json-1.1';
export const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
/** Traces of a stack in a response body: source locations or Node internals. */
export const STACK_TRACE = /\bat\s.*\.(js|ts):\d+|\.js:\d+:\d+|node:internal|Error: .*\n\s+at /;
const REGION = 'us-east-1';

export interface RawRequest {
  /** X-Amz-Target header; null omits it. */
  target: string | null;
  body?: string | Buffer;
  /** null omits the header. */
  contentType?: string | null;
  /** false: no Authorization header at all. */
  sign?: boolean;
  region?: string;
  /** Extra headers, included in the signature. */
  headers?: Record<string, string>;
  /** Streams the body in chunks (Transfer-Encoding: chunked, no Content-Length). */
  chunked?: boolean;
}

export interface RawResponse {
  status: number;
  headers: Headers;
  text: string;
}

/** The headers of `POST /` as the AWS SDK's signer signs them (Content-Length not included). */
export async function signedHeaders(endpoint: string, request: RawRequest): Promise<Record<string, string>> {
  const url = new URL(endpoint);
  const headers: Record<string, string> = { host: url.host, ...request.headers };
  if (request.contentType !== null) headers['content-type'] = request.contentType ?? AMZ_JSON;
  if (request.target !== null) headers['x-amz-target'] = request.target;
  if (request.sign === false) return headers;
  const signer = new SignatureV4({
    credentials: { accessKeyId: 'AKIDPROTOCOL', secretAccessKey: 'protocol-secret' },
    region: request.region ?? REGION,
    service: 'kms',
    sha256: Hash.bind(null, 'sha256'),
  });
  const signed = await signer.sign({ method: 'POST', protocol: 'http:', hostname: url.hostname, port: Number(url.port), path: '/', query: {}, headers, body: request.body ?? '{}' });
  return signed.headers as Record<string, string>;
}

/** Sends POST / signed with the AWS SDK's SigV4 signer, headers and body exactly as given. */
export async function post(endpoint: string, request: RawRequest): Promise<RawResponse> {
  const body = request.body ?? '{}';
  const init: RequestInit & { duplex?: 'half' } = { method: 'POST', headers: await signedHeaders(endpoint, request) };
  if (request.chunked) {
    const bytes = Buffer.from(body);
    init.body = new ReadableStream<Uint8Array>({
      start(controller) {
        for (let i = 0; i < bytes.length; i += 64 * 1024) controller.enqueue(bytes.subarray(i, i + 64 * 1024));
        controller.close();
      },
    });
    init.duplex = 'half';
  } else {
    init.body = body;
  }
  const res = await fetch(`${endpoint}/`, init);
  return { status: res.status, headers: res.headers, text: await res.text() };
}

/**
 * Checks the AWS JSON error envelope: status, `{"__type", "message"}` and nothing else,
 * x-amzn-RequestId, Content-Type, no stack trace. Returns the message.
 */
export function expectError(res: RawResponse, type: string, status = 400, contentType = AMZ_JSON): string {
  expect(res.text, 'error body').to.not.match(STACK_TRACE);
  expect(res.status, res.text).to.equal(status);
  expect(res.headers.get('content-type'), 'Content-Type').to.equal(contentType);
  expect(res.headers.get('x-amzn-requestid'), 'x-amzn-RequestId').to.match(UUID);
  let body: unknown;
  expect(() => (body = JSON.parse(res.text)), `error body is JSON: ${res.text.slice(0, 200)}`).to.not.throw();
  expect(body).to.be.an('object');
  expect(Object.keys(body as object).sort(), res.text).to.deep.equal(['__type', 'message']);
  const { __type, message } = body as { __type: unknown; message: unknown };
  expect(__type, res.text).to.equal(type);
  expect(message).to.be.a('string');
  return message as string;
}

export function expectOk(res: RawResponse, contentType = AMZ_JSON): Record<string, unknown> {
  expect(res.status, res.text).to.equal(200);
  expect(res.headers.get('content-type')).to.equal(contentType);
  expect(res.headers.get('x-amzn-requestid')).to.match(UUID);
  return JSON.parse(res.text) as Record<string, unknown>;
}

/**
 * One request as raw bytes: `headers` in the order given (a name may repeat), then the body.
 * Content-Length is the body's unless `contentLength` claims another.
 */
export function rawRequest(headers: ReadonlyArray<readonly [string, string]>, body: string, contentLength = Buffer.byteLength(body)): string {
  return `POST / HTTP/1.1\r\n${headers.map(([k, v]) => `${k}: ${v}\r\n`).join('')}content-length: ${contentLength}\r\n\r\n${body}`;
}

/**
 * Writes `bytes` on one connection and resolves with the first `count` responses (status and
 * body), read by their Content-Length; fewer if the server closes the connection first.
 */
export function exchange(endpoint: string, bytes: string, count: number): Promise<Array<{ status: number; body: string }>> {
  const url = new URL(endpoint);
  return new Promise((resolve, reject) => {
    const socket = net.connect(Number(url.port), url.hostname);
    let received = Buffer.alloc(0);
    const responses: Array<{ status: number; body: string }> = [];
    const finish = () => {
      socket.destroy();
      resolve(responses);
    };
    socket.on('data', (chunk: Buffer) => {
      received = Buffer.concat([received, chunk]);
      for (;;) {
        const end = received.indexOf('\r\n\r\n');
        if (end < 0) return;
        const head = received.subarray(0, end).toString('latin1');
        const length = Number(/\r\ncontent-length: *(\d+)/i.exec(head)?.[1] ?? 0);
        if (received.length < end + 4 + length) return;
        responses.push({ status: Number(head.split(' ')[1]), body: received.subarray(end + 4, end + 4 + length).toString() });
        received = received.subarray(end + 4 + length);
        if (responses.length === count) return finish();
      }
    });
    socket.on('end', finish);
    socket.on('error', reject);
    socket.write(bytes);
  });
}
