import { isUtf8 } from 'node:buffer';
import { randomUUID } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { parse as parseQueryString } from 'node:querystring';
import parseUrl from 'parseurl';
import type { Logger } from 'pino';
import type { Caller } from '../../access/principal';
import { type ApiCall, apiCallEvents, type AuditSink, eventIdOf } from '../../audit/event';
import { oncePerSecond } from '../../clock';
import { KmsError } from '../../errors';
import { OPERATIONS as MODEL_OPERATIONS } from '../../model/generated/shapes';
import type { OperationName } from '../../model/generated/types';
import { OPERATIONS, type RequestContext, type Services } from '../../operations';
import { transportOf } from '../../server/listener';
import type { KeyRecord } from '../../store/records';
import { ownRecord } from '../own-properties';
import { decodeInput, encodeOutput } from './codec';
import { errorResponse, httpStatusOf } from './error-response';
import { readRequestBody } from './request-body';
import type { SigV4Authenticator } from './sigv4-auth';
import { validateInput } from './validate';

const TARGET_PREFIX = 'TrentService.';
const AMZ_JSON = 'application/x-amz-json-1.1';
/** Response members holding plaintext secrets; their buffers are zeroed once sent. */
const SECRET_OUTPUT_MEMBERS = ['Plaintext', 'PrivateKeyPlaintext', 'SharedSecret'] as const;

export interface AwsJsonDeps {
  services: Services;
  authenticator: SigV4Authenticator;
  log: Logger;
  maxBodyBytes: number;
  audit: AuditSink;
}

type Request = IncomingMessage;
type Response = ServerResponse;

/** The parts of the request line the dialect reads (Express's req.path and 'simple' req.query). */
interface Target {
  path: string;
  query: Record<string, string>;
}

/**
 * The AWS JSON 1.1 dialect: `POST /` with `X-Amz-Target: TrentService.<Operation>`.
 * One request flows: read the body → authenticate → find the operation → parse → validate
 * against the AWS model → decode blobs → operation → encode → respond.
 *
 * One plain Node request handler, no middleware stack: the server hands it `POST /` directly
 * and Express routes the rest of POST / (presigned query strings) to it. The body is read once
 * by raw-body (request-body.ts: limit, content-encoding, aborted requests).
 */
export function awsJsonEndpoint(deps: AwsJsonDeps): (req: Request, res: Response) => void {
  const tooLarge = () => new KmsError('ValidationException', `Request body exceeds the maximum of ${deps.maxBodyBytes} bytes.`);
  const refuse = (req: Request, res: Response, error: KmsError) => {
    const requestId = requestIdOf(res);
    void answer(deps, req, res, requestId, errorResponse(error, deps.log, { path: targetOf(req).path, requestId }), {});
  };
  return (req, res) => {
    // A declared length over the limit is answered at once (the rest is discarded as it comes):
    // reading the whole body first would wait for it until the request timeout.
    if (Number(req.headers['content-length']) > deps.maxBodyBytes) {
      req.resume();
      refuse(req, res, tooLarge());
      return;
    }
    readRequestBody(req, deps.maxBodyBytes, (failure, body) => {
      if (failure === undefined) {
        // Handled in full (audit record included) even if the client goes away meanwhile.
        const work = handle(deps, req, res, body);
        deps.services.work?.track(work);
        return;
      }
      // Bodies that cannot be read (oversized, compressed, cut off) are answered like any request error.
      refuse(
        req,
        res,
        failure === 'entity.too.large'
          ? tooLarge()
          : failure === 'encoding.unsupported'
            ? new KmsError('SerializationException', 'Content-Encoding is not supported: send the request body uncompressed (identity).')
            : new KmsError('SerializationException', 'The request body could not be read.'),
      );
    });
  };
}

/**
 * Answers a request no route took (a GET or PUT to /, another path) that claims to be a KMS
 * call: an X-Amz-Target or a SigV4 signature. It is refused as AWS refuses an unknown
 * operation and recorded like every other call, so no attempt leaves the trail without a trace.
 * Anything else (a browser's /favicon.ico) gets the same answer unrecorded.
 */
export function unroutedRequest(deps: AwsJsonDeps): (req: Request, res: Response) => void {
  return (req, res) => {
    const error = new KmsError('UnknownOperationException', 'Send AWS KMS requests as POST / with X-Amz-Target.');
    const requestId = requestIdOf(res);
    const reply = { status: 404, body: JSON.stringify({ __type: error.name, message: error.message }) };
    req.resume();
    const { query } = targetOf(req);
    const claimsKmsCall = req.headers['x-amz-target'] !== undefined || req.headers.authorization !== undefined || query['X-Amz-Credential'] !== undefined;
    if (!claimsKmsCall) {
      send(res, requestId, 'application/json', reply, deps.services.clock.now());
      return;
    }
    void answer(deps, req, res, requestId, reply, {}, 'application/json');
  };
}

async function handle(deps: AwsJsonDeps, req: Request, res: Response, body: Buffer): Promise<void> {
  const requestId = requestIdOf(res);
  const contentType = contentTypeOf(req);
  const started = process.hrtime.bigint();
  let operation: string | undefined;
  const call: Partial<ApiCall> = {};
  let reply: { status: number; body: string };
  try {
    const { path, query } = targetOf(req);
    const auth = await deps.authenticator.authenticate({
      method: req.method!,
      host: req.headers.host ?? '',
      path,
      query,
      headers: req.headers as Record<string, string | undefined>,
      body,
    });
    call.caller = auth.caller;
    call.region = auth.region;
    // A presigned request carries its X-Amz-* headers in the query string.
    const op = operationOf(req.headers['x-amz-target'] ?? query['X-Amz-Target'] ?? query['x-amz-target']);
    operation = op;
    checkContentType(req.headers['content-type']);
    const handler = OPERATIONS[op] as ((input: unknown, ctx: RequestContext, s: Services) => Promise<unknown>) | undefined;
    if (!handler) {
      throw new KmsError('UnsupportedOperationException', `${op} is not implemented by p11kms yet. See the operations table in the README.`);
    }
    const json = parseBody(body);
    call.input = json;
    validateInput(op, json);
    const input = decodeInput(op, json as Record<string, unknown>);
    call.input = input;
    call.inputDecoded = true;
    const ctx: RequestContext = {
      scope: { region: auth.region, accountId: auth.caller.accountId },
      caller: auth.caller,
      requestId,
      // Express's req.ip without 'trust proxy'.
      sourceIp: req.socket.remoteAddress,
      transport: transportOf(req.socket),
      grantTokens: Array.isArray((input as { GrantTokens?: unknown }).GrantTokens) ? ((input as { GrantTokens: string[] }).GrantTokens) : undefined,
    };
    await deps.services.quotas?.admit(op, input, ctx, deps.services);
    const outbox = deps.services.outbox;
    const run = () => handler(input, ctx, deps.services);
    // A change this request commits carries the records it would leave if its own were never
    // written: all of them (ReplicateKey's CreateKey in the replica's region, …), from what it wrote.
    const provisional = (written: readonly KeyRecord[]) => apiCallEvents(callOf(deps, req, requestId, op, auth.caller, auth.region, { input, inputDecoded: true }), written);
    const output = (await (outbox ? outbox.within(() => eventIdOf(requestId), provisional, run, op) : run())) as Record<string, unknown>;
    call.output = output;
    reply = { status: 200, body: JSON.stringify(encodeOutput(op, output as never)) };
    zeroSecrets(output);
  } catch (err) {
    reply = errorResponse(err, deps.log, { requestId, operation });
  }
  try {
    call.operation = operation;
    await answer(deps, req, res, requestId, reply, call, contentType);
  } finally {
    if (deps.log.isLevelEnabled('debug')) {
      const ms = Number(process.hrtime.bigint() - started) / 1e6;
      deps.log.debug({ requestId, operation, status: res.statusCode, ms }, 'request');
    }
  }
}

/**
 * The one exit of every request: its audit record is made durable first, then the reply is
 * sent. A record that cannot be written turns the reply into KMSInternalException.
 */
async function answer(
  deps: AwsJsonDeps,
  req: Request,
  res: Response,
  requestId: string,
  reply: { status: number; body: string },
  call: Partial<ApiCall>,
  contentType = contentTypeOf(req),
): Promise<void> {
  let sent = reply;
  const outbox = deps.services.outbox;
  try {
    const events = apiCallEvents(
      callOf(deps, req, requestId, call.operation ?? claimedOperationOf(req), call.caller, call.region ?? claimedRegionOf(req), {
        input: call.input,
        inputDecoded: call.inputDecoded,
        output: call.output,
        error: reply.status === 200 ? undefined : errorOf(reply.body),
      }),
    );
    for (const event of events) {
      outbox?.crashPointForTests(event);
      await deps.audit.record(event);
    }
    outbox?.settle(events[0].eventID, true);
  } catch (err) {
    outbox?.settle(eventIdOf(requestId), false);
    deps.log.error({ requestId, operation: call.operation, err: (err as Error).message }, 'request refused: its audit record could not be written');
    sent = { status: httpStatusOf('KMSInternalException'), body: JSON.stringify({ __type: 'KMSInternalException', message: 'An internal error occurred.' }) };
  }
  send(res, requestId, contentType, sent, deps.services.clock.now());
}

/**
 * A call's record input: what the router knows of it and, once known, its outcome. One flat
 * literal, every field present (undefined when absent): built by spreading one object into
 * another, it sent V8 down a slow path for the object and for every read of it while the record
 * was made: 28–40 µs per Encrypt's record against 10–18 µs this way (microbenchmark of
 * apiCallEvents, interleaved rounds), about 5 % of the request's CPU.
 */
function callOf(
  deps: AwsJsonDeps,
  req: Request,
  requestId: string,
  operation: string | undefined,
  caller: Caller | undefined,
  region: string | undefined,
  outcome: Pick<ApiCall, 'input' | 'inputDecoded' | 'output' | 'error'>,
): ApiCall {
  return {
    dialect: 'aws-json',
    time: deps.services.clock.now(),
    requestId,
    operation,
    caller,
    claimedAccessKeyId: caller ? undefined : claimedAccessKeyIdOf(req),
    region,
    sourceIp: req.socket.remoteAddress,
    tlsClientSubject: transportOf(req.socket).clientCertificateSubject,
    userAgent: req.headers['user-agent'],
    input: outcome.input,
    inputDecoded: outcome.inputDecoded,
    output: outcome.output,
    error: outcome.error,
  };
}

function errorOf(body: string): { code: string; message: string } {
  const parsed = JSON.parse(body) as { __type?: string; message?: string };
  return { code: parsed.__type ?? 'Unknown', message: parsed.message ?? '' };
}

/** SigV4 credential scope (header or presigned query): AccessKeyId/date/region/service/aws4_request. */
function credentialScopeOf(req: Request): string[] {
  const header = req.headers.authorization;
  const fromHeader = typeof header === 'string' ? /Credential=([^,\s]+)/.exec(header)?.[1] : undefined;
  const fromQuery = targetOf(req).query['X-Amz-Credential'];
  return (fromHeader ?? fromQuery ?? '').split('/');
}

function claimedOperationOf(req: Request): string | undefined {
  try {
    const target = req.headers['x-amz-target'] ?? targetOf(req).query['X-Amz-Target'];
    return operationOf(target);
  } catch {
    return undefined;
  }
}

function claimedAccessKeyIdOf(req: Request): string | undefined {
  const id = credentialScopeOf(req)[0];
  return id && /^[A-Za-z0-9]{1,128}$/.test(id) ? id : undefined;
}

function claimedRegionOf(req: Request): string | undefined {
  const region = credentialScopeOf(req)[2];
  return region && /^[a-z0-9-]{1,32}$/.test(region) ? region : undefined;
}

function operationOf(target: string | string[] | undefined): OperationName {
  const value = Array.isArray(target) ? target[0] : target;
  if (!value || !value.startsWith(TARGET_PREFIX)) {
    throw new KmsError('UnknownOperationException', 'Missing or malformed X-Amz-Target header; expected TrentService.<Operation>.');
  }
  const name = value.slice(TARGET_PREFIX.length);
  if (!Object.prototype.hasOwnProperty.call(MODEL_OPERATIONS, name)) {
    throw new KmsError('UnknownOperationException', `Unknown operation ${value}.`);
  }
  return name as OperationName;
}

/** Media types of the JSON protocols; AWS answers any other Content-Type as an unknown operation. */
const JSON_MEDIA_TYPES = new Set([AMZ_JSON, 'application/x-amz-json-1.0', 'application/json']);

/** A request without Content-Type (or with an empty one) is read as JSON (curl, hand-made clients); another type is refused. */
function checkContentType(header: string | undefined): void {
  if (!header) return;
  const mediaType = header.split(';', 1)[0]!.trim().toLowerCase();
  if (!JSON_MEDIA_TYPES.has(mediaType)) {
    throw new KmsError('UnknownOperationException', `Content-Type ${JSON.stringify(header.slice(0, 100))} is not supported; send ${AMZ_JSON}.`);
  }
}

function parseBody(body: Buffer): unknown {
  if (body.length === 0) return {};
  // JSON is UTF-8 (RFC 8259); decoding invalid bytes to U+FFFD would alter key ids and contexts.
  if (!isUtf8(body)) throw new KmsError('SerializationException', 'The request body is not valid UTF-8.');
  const text = body.toString('utf8');
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    throw new KmsError('SerializationException', 'The request body is not valid JSON.');
  }
  // JSON's \u escapes can still spell a lone surrogate, which has no UTF-8 form: an encryption
  // context holding one is bound to the ciphertext as U+FFFD, so another context would open it.
  if (text.includes('\\u') && !wellFormedThroughout(json)) {
    throw new KmsError('SerializationException', 'The request body holds a string that is not well-formed Unicode (an unpaired surrogate escape).');
  }
  return json;
}

/** Whether every string in `value`, member names included, is well-formed Unicode. */
function wellFormedThroughout(value: unknown): boolean {
  if (typeof value === 'string') return value.isWellFormed();
  if (typeof value !== 'object' || value === null) return true;
  if (Array.isArray(value)) return value.every(wellFormedThroughout);
  return Object.entries(value).every(([name, member]) => name.isWellFormed() && wellFormedThroughout(member));
}

const parsedTargets = new WeakMap<Request, Target>();

/** Path and query of the request line as Express reads them, parsed once per request (first value of a repeated parameter). */
function targetOf(req: Request): Target {
  let target = parsedTargets.get(req);
  if (target) return target;
  const url = parseUrl(req);
  const search = typeof url?.query === 'string' ? url.query : '';
  // Parameter names come from the client: kept as own properties ("__proto__" included). An
  // SDK's POST / has none: no parsing then (~1.6 µs a request).
  const query =
    search === ''
      ? {}
      : ownRecord(
          Object.entries(parseQueryString(search)).flatMap(([k, v]): [string, string][] =>
            typeof v === 'string' ? [[k, v]] : Array.isArray(v) && typeof v[0] === 'string' ? [[k, v[0]]] : [],
          ),
        );
  target = { path: url?.pathname ?? '/', query };
  parsedTargets.set(req, target);
  return target;
}

function contentTypeOf(req: Request): string {
  const type = req.headers['content-type'];
  return type && type.toLowerCase().startsWith('application/json') ? 'application/json' : AMZ_JSON;
}

function requestIdOf(res: Response): string {
  let id = res.getHeader('x-amzn-RequestId') as string | undefined;
  if (!id) {
    id = randomUUID();
    res.setHeader('x-amzn-RequestId', id);
  }
  return id;
}

function send(res: Response, requestId: string, contentType: string, reply: { status: number; body: string }, now: number): void {
  res.writeHead(reply.status, {
    'x-amzn-RequestId': requestId,
    // SDKs correct their clock skew from this header; it must be the service's clock.
    Date: httpDate(now),
    'Content-Type': contentType,
    'Content-Length': Buffer.byteLength(reply.body),
  });
  res.end(reply.body);
}

const httpDate = oncePerSecond((date) => date.toUTCString());

function zeroSecrets(output: Record<string, unknown> | undefined): void {
  if (!output) return;
  for (const member of SECRET_OUTPUT_MEMBERS) {
    const value = output[member];
    if (Buffer.isBuffer(value)) value.fill(0);
  }
}
