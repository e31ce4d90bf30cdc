import { createHash, randomUUID, timingSafeEqual } from 'node:crypto';
import express, { type Request, type Response } from 'express';
import type { Logger } from 'pino';
import { type AuditEvent, type AuditSink, EVENT_VERSION, isoSeconds } from '../../audit/event';
import type { Clock } from '../../clock';
import type { ExternalKeys } from '../../custody/external-keys';
import { isKmsError } from '../../errors';
import { HeaderSignatures, parseAmzDate, parseSignature, type SignedRequest, signedHeaderValues } from '../aws-json/sigv4-auth';
import type { XksPrefix, XksSettingsFile } from './settings';
import { hsmAad, integrityValue, XKS_API_PATH, XKS_SERVICE } from './spec';
import type { WorkInFlight } from '../../server/work-in-flight';

export interface XksDeps {
  settings: XksSettingsFile;
  keys: ExternalKeys;
  audit: AuditSink;
  clock: Clock;
  log: Logger;
  maxBodyBytes: number;
  /** The SigV4 maths of the KMS listener, with service kms-xks-proxy. */
  signatures: HeaderSignatures;
  /** Requests at work, for shutdown to wait for before the token closes. */
  work?: WorkInFlight;
}

type Api = 'GetKeyMetadata' | 'Encrypt' | 'Decrypt' | 'GetHealthStatus';

/** An XKS API error: the spec's errorName and HTTP status. */
class XksError extends Error {
  constructor(
    readonly status: number,
    readonly errorName: string,
    message: string,
  ) {
    super(message);
  }
}

const MAX_SKEW_MS = 5 * 60 * 1000;
const KEY_ID = /^[A-Za-z0-9._-]{1,128}$/;
/**
 * The spec's AAD construction prefixes the AAD with its length in 16 bits, so longer AAD
 * cannot be sealed: a size beyond what this proxy supports is the spec's 501 (the spec's
 * minimum is 8192 bytes).
 */
const MAX_AAD_BYTES = 0xffff;
/** The proxy's own ciphertext metadata: scheme 1 of the AAD construction (spec's recommended one). */
const CIPHERTEXT_METADATA = Buffer.from([1]);

/**
 * The XKS Proxy API v1 over the main token: `{prefix}/kms/xks/v1/keys/{id}/metadata|encrypt|decrypt`
 * and `{prefix}/kms/xks/v1/health`, POST only, SigV4 for service kms-xks-proxy. Every call
 * is audited (kmsRequestId, awsPrincipalArn, kmsOperation) before its answer is sent.
 */
export function xksApp(deps: XksDeps): express.Express {
  const app = express();
  app.disable('x-powered-by');
  app.set('etag', false);
  // For load balancers: the spec's API has no GET.
  app.get('/ping', (_req, res) => void res.type('text/plain').send('pong from p11kms xks proxy'));
  app.use(express.raw({ type: () => true, limit: deps.maxBodyBytes }));
  app.use((req, res) => {
    const work = handle(deps, req, res);
    deps.work?.track(work);
  });
  app.use((err: unknown, req: Request, res: Response, _next: (e?: unknown) => void) => {
    const tooLarge = (err as { type?: string }).type === 'entity.too.large';
    void answer(deps, req, res, { api: undefined }, tooLarge ? new XksError(501, 'UnsupportedOperationException', 'The request is larger than this proxy accepts.') : new XksError(400, 'ValidationException', 'The request body could not be read.'));
  });
  return app;
}

interface CallRecord {
  api: Api | undefined;
  prefix?: string;
  externalKeyId?: string;
  accessKeyId?: string;
  region?: string;
  metadata?: Record<string, unknown>;
}

async function handle(deps: XksDeps, req: Request, res: Response): Promise<void> {
  const call: CallRecord = { api: undefined };
  try {
    const settings = deps.settings.current();
    const route = routeOf(settings.prefixes, req.path);
    call.api = route.api;
    call.prefix = route.prefix.uriPathPrefix;
    call.externalKeyId = route.externalKeyId;
    if (req.method !== 'POST') throw new XksError(405, 'ValidationException', 'The XKS API accepts POST only.');
    const body: Buffer = Buffer.isBuffer(req.body) ? req.body : Buffer.alloc(0);
    const auth = await authenticate(deps, route.prefix, settings.regions, req, body);
    call.accessKeyId = auth.accessKeyId;
    call.region = auth.region;
    const json = parseJson(body);
    const metadata = requestMetadataOf(json, route.api);
    call.metadata = metadata;
    if (route.externalKeyId !== undefined && route.prefix.keyIds && !route.prefix.keyIds.includes(route.externalKeyId)) {
      throw new XksError(404, 'KeyNotFoundException', `External key ${route.externalKeyId} is not served under this path.`);
    }
    const output = await run(deps, route.api, route.externalKeyId, json);
    await answer(deps, req, res, call, output);
  } catch (err) {
    await answer(deps, req, res, call, toXksError(err, deps.log, call));
  }
}

function routeOf(prefixes: readonly XksPrefix[], path: string): { prefix: XksPrefix; api: Api; externalKeyId?: string } {
  for (const prefix of prefixes) {
    const base = `${prefix.uriPathPrefix}${XKS_API_PATH}`;
    if (!path.startsWith(`${base}/`)) continue;
    const rest = path.slice(base.length);
    if (rest === '/health') return { prefix, api: 'GetHealthStatus' };
    const m = /^\/keys\/([^/]+)\/(metadata|encrypt|decrypt)$/.exec(rest);
    if (m && KEY_ID.test(m[1])) {
      return { prefix, api: ({ metadata: 'GetKeyMetadata', encrypt: 'Encrypt', decrypt: 'Decrypt' } as const)[m[2] as 'metadata'], externalKeyId: m[1] };
    }
  }
  throw new XksError(404, 'InvalidUriPathException', `No XKS API at ${path}.`);
}

async function authenticate(deps: XksDeps, prefix: XksPrefix, regions: string[] | undefined, req: Request, body: Buffer): Promise<{ accessKeyId: string; region: string }> {
  const request: SignedRequest = {
    method: req.method,
    host: req.headers.host ?? '',
    path: req.path,
    query: {},
    headers: req.headers as Record<string, string | undefined>,
    body,
  };
  const failed = (why: string) => new XksError(401, 'AuthenticationFailedException', why);
  let parts;
  try {
    parts = parseSignature(request);
  } catch (err) {
    throw failed(isKmsError(err) ? err.message : 'Malformed signature.');
  }
  if (parts.service !== XKS_SERVICE) throw failed(`Credential must be scoped to service ${XKS_SERVICE}.`);
  if (regions && !regions.includes(parts.region)) throw failed(`Region ${parts.region} is not accepted by this proxy.`);
  const credential = prefix.credentials.find((c) => c.accessKeyId === parts.accessKeyId);
  if (!credential) throw failed('Unknown access key for this path.');
  const signedAt = parseAmzDate(parts.amzDate);
  if (signedAt === undefined || Math.abs(deps.clock.now() - signedAt) > MAX_SKEW_MS) throw failed('The request time is more than 5 minutes from the proxy time.');
  if (parts.expiresSeconds !== undefined) throw failed('Presigned requests are not accepted.');
  const headers = signedHeaderValues(request, parts.signedHeaders, (name) => failed(`Signed header ${name} is missing.`));
  const payloadHash = createHash('sha256').update(body).digest('hex');
  const declared = request.headers['x-amz-content-sha256'];
  if (declared !== undefined && declared !== payloadHash) throw failed('The body does not match x-amz-content-sha256.');
  const expected = await deps.signatures.expected(
    { method: request.method, path: request.path, query: {}, headers, payloadHash },
    credential,
    { signingDate: new Date(signedAt), region: parts.region, service: XKS_SERVICE, signedHeaders: parts.signedHeaders },
  );
  const a = Buffer.from(expected);
  const b = Buffer.from(parts.signature);
  if (a.length !== b.length || !timingSafeEqual(a, b)) throw failed('The signature does not match.');
  return { accessKeyId: parts.accessKeyId, region: parts.region };
}

function parseJson(body: Buffer): Record<string, unknown> {
  try {
    const json = JSON.parse(body.toString('utf8')) as unknown;
    if (json && typeof json === 'object' && !Array.isArray(json)) return json as Record<string, unknown>;
  } catch {
    // Falls through to the validation error.
  }
  throw new XksError(400, 'ValidationException', 'The body must be a JSON object.');
}

/** requestMetadata's required members per API; unknown members and kmsOperation values are tolerated. */
function requestMetadataOf(json: Record<string, unknown>, api: Api): Record<string, unknown> {
  const metadata = json.requestMetadata;
  if (!metadata || typeof metadata !== 'object' || Array.isArray(metadata)) throw new XksError(400, 'ValidationException', 'requestMetadata is required.');
  const m = metadata as Record<string, unknown>;
  const required = ['kmsRequestId', 'kmsOperation', ...(api === 'GetHealthStatus' ? [] : ['awsPrincipalArn']), ...(api === 'Encrypt' || api === 'Decrypt' ? ['kmsKeyArn'] : [])];
  for (const member of required) {
    if (typeof m[member] !== 'string' || m[member] === '') throw new XksError(400, 'ValidationException', `requestMetadata.${member} is required.`);
  }
  return m;
}

function base64Member(json: Record<string, unknown>, member: string, required: boolean, lengths?: number[]): Buffer | undefined {
  const value = json[member];
  if (value === undefined || value === null) {
    if (required) throw new XksError(400, 'ValidationException', `${member} is required.`);
    return undefined;
  }
  if (typeof value !== 'string' || !/^[A-Za-z0-9+/]*={0,2}$/.test(value) || value.length % 4 !== 0) throw new XksError(400, 'ValidationException', `${member} must be standard Base64.`);
  const bytes = Buffer.from(value, 'base64');
  if (lengths && !lengths.includes(bytes.length)) throw new XksError(400, 'ValidationException', `${member} must be ${lengths.join(' or ')} bytes.`);
  return bytes;
}

async function run(deps: XksDeps, api: Api, externalKeyId: string | undefined, json: Record<string, unknown>): Promise<Record<string, unknown>> {
  if (api === 'GetHealthStatus') {
    const device = await deps.keys.probe();
    return {
      xksProxyFleetSize: 1,
      xksProxyVendor: 'p11kms',
      xksProxyModel: 'p11kms XKS proxy',
      ekmVendor: `${device.manufacturer} ${device.serialNumber}`.trim(),
      ekmFleetDetails: [{ id: device.label, model: device.model, healthStatus: 'ACTIVE' }],
    };
  }
  const id = externalKeyId!;
  if (api === 'GetKeyMetadata') {
    const metadata = await deps.keys.metadata(id);
    if (!metadata) throw new XksError(404, 'KeyNotFoundException', `External key ${id} does not exist.`);
    // Token keys cannot be disabled through this API: always ENABLED, as the spec allows.
    return { keySpec: metadata.keySpec, keyUsage: metadata.keyUsage, keyStatus: 'ENABLED' };
  }
  if (json.encryptionAlgorithm !== 'AES_GCM') throw new XksError(400, 'ValidationException', 'encryptionAlgorithm must be AES_GCM.');
  const aad = base64Member(json, 'additionalAuthenticatedData', false);
  if (aad && aad.length > MAX_AAD_BYTES) throw new XksError(501, 'UnsupportedOperationException', `additionalAuthenticatedData longer than ${MAX_AAD_BYTES} bytes is not supported.`);
  if (api === 'Encrypt') {
    const plaintext = base64Member(json, 'plaintext', true)!;
    // KMS always sends a ciphertext blob; empty input is a bad request, not a token failure.
    if (plaintext.length === 0) throw new XksError(400, 'ValidationException', 'plaintext must not be empty.');
    const cdiv = json.ciphertextDataIntegrityValueAlgorithm;
    if (cdiv !== undefined && cdiv !== 'SHA_256') throw new XksError(400, 'ValidationException', 'ciphertextDataIntegrityValueAlgorithm must be SHA_256.');
    const gcmAad = hsmAad(aad, CIPHERTEXT_METADATA);
    const sealed = await deps.keys.encrypt(id, gcmAad, plaintext);
    plaintext.fill(0);
    const out: Record<string, unknown> = {
      ciphertext: sealed.ciphertext.toString('base64'),
      initializationVector: sealed.iv.toString('base64'),
      authenticationTag: sealed.tag.toString('base64'),
      ciphertextMetadata: CIPHERTEXT_METADATA.toString('base64'),
    };
    if (cdiv === 'SHA_256') {
      out.ciphertextDataIntegrityValue = integrityValue({ aad, ciphertextMetadata: CIPHERTEXT_METADATA, iv: sealed.iv, ciphertext: sealed.ciphertext, tag: sealed.tag });
      // The spec's order: encrypt, integrity value, then a test decryption before answering.
      (await deps.keys.decrypt(id, sealed.iv, gcmAad, sealed.ciphertext, sealed.tag)).fill(0);
    }
    return out;
  }
  const ciphertext = base64Member(json, 'ciphertext', true)!;
  const iv = base64Member(json, 'initializationVector', true, [12, 16])!;
  const tag = base64Member(json, 'authenticationTag', true, [16])!;
  const ciphertextMetadata = base64Member(json, 'ciphertextMetadata', false);
  if (ciphertextMetadata && ciphertextMetadata.length > 20) throw new XksError(400, 'ValidationException', 'ciphertextMetadata is at most 20 bytes.');
  const plaintext = await deps.keys.decrypt(id, iv, hsmAad(aad, ciphertextMetadata), ciphertext, tag);
  return { plaintext: plaintext.toString('base64') };
}

/** KMS errors from custody become the spec's names; anything else is InternalException, detail only logged. */
function toXksError(err: unknown, log: Logger, call: CallRecord): XksError {
  if (err instanceof XksError) return err;
  if (isKmsError(err)) {
    const mapped: Record<string, [number, string]> = {
      NotFoundException: [404, 'KeyNotFoundException'],
      InvalidCiphertextException: [400, 'InvalidCiphertextException'],
      InvalidKeyUsageException: [400, 'InvalidKeyUsageException'],
      DependencyTimeoutException: [503, 'DependencyTimeoutException'],
    };
    const hit = mapped[err.name];
    if (hit) return new XksError(hit[0], hit[1], err.message);
  }
  log.error({ api: call.api, externalKeyId: call.externalKeyId, err: (err as Error).message, detail: isKmsError(err) ? err.internalDetail : undefined }, 'XKS request failed');
  return new XksError(500, 'InternalException', 'The proxy could not complete the request.');
}

/** Records the call (durably, before answering), then answers; an unrecordable call is an InternalException. */
async function answer(deps: XksDeps, req: Request, res: Response, call: CallRecord, outcome: Record<string, unknown> | XksError): Promise<void> {
  let status = outcome instanceof XksError ? outcome.status : 200;
  let body: Record<string, unknown> = outcome instanceof XksError ? { errorName: outcome.errorName, errorMessage: outcome.message.replace(/[^\x20-\x7e]/g, '?').slice(0, 500) } : outcome;
  try {
    await deps.audit.record(xksEvent(deps.clock.now(), req, call, outcome instanceof XksError ? outcome : undefined));
  } catch (err) {
    deps.log.error({ api: call.api, err: (err as Error).message }, 'XKS request refused: its audit record could not be written');
    status = 500;
    body = { errorName: 'InternalException' };
  }
  const text = JSON.stringify(body);
  res.writeHead(status, { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(text) });
  res.end(text);
}

/** What the trail says about an XKS call: who (kmsRequestId, awsPrincipalArn), which key, never data. */
function xksEvent(time: number, req: Request, call: CallRecord, error: XksError | undefined): AuditEvent {
  const m = call.metadata ?? {};
  const pick = (k: string) => (typeof m[k] === 'string' ? { [k]: m[k] as string } : {});
  return {
    eventVersion: EVENT_VERSION,
    userIdentity: { type: 'XksProxyCredential', ...(call.accessKeyId ? { accessKeyId: call.accessKeyId } : {}), ...pick('awsPrincipalArn') },
    eventTime: isoSeconds(time),
    eventSource: `${XKS_SERVICE}.p11kms`,
    eventName: `Xks${call.api ?? 'Unknown'}`,
    awsRegion: call.region ?? 'unknown',
    sourceIPAddress: req.socket.remoteAddress ?? 'unknown',
    userAgent: req.headers['user-agent'] ?? '',
    ...(error ? { errorCode: error.errorName, errorMessage: error.message } : {}),
    requestParameters: {
      ...(call.externalKeyId ? { externalKeyId: call.externalKeyId } : {}),
      ...(call.prefix !== undefined ? { uriPathPrefix: call.prefix } : {}),
      ...pick('kmsRequestId'),
      ...pick('kmsOperation'),
      ...pick('awsPrincipalArn'),
      ...pick('kmsKeyArn'),
      ...pick('kmsViaService'),
      ...pick('awsSourceVpc'),
      ...pick('awsSourceVpce'),
    },
    responseElements: null,
    additionalEventData: { dialect: 'xks' },
    requestID: randomUUID(),
    eventID: randomUUID(),
    readOnly: call.api !== undefined,
    eventType: 'AwsApiCall',
    managementEvent: true,
    eventCategory: 'Management',
  };
}
