import { createHmac, hash, timingSafeEqual } from 'node:crypto';
import { Hash } from '@smithy/hash-node';
import { createScope, getCanonicalHeaders, getSigningKey, SignatureV4 } from '@smithy/signature-v4';
import { type AccessKey, callerOf, type Credentials } from '../../access/credentials';
import type { Caller } from '../../access/principal';
import type { Clock } from '../../clock';
import type { AuthMode } from '../../config/config';
import { KmsError } from '../../errors';
import { ownRecord, ownValue } from '../own-properties';

/** What the wire layer hands to authentication: the raw request as received. */
export interface SignedRequest {
  method: string;
  host: string;
  path: string;
  /** Query parameters, already URL-decoded. */
  query: Record<string, string>;
  /**
   * Parameters given more than once (not in `query`), every value: the client signed them all
   * (SigV4 sorts the values), so the signature is checked over them all.
   */
  repeatedQuery?: Record<string, string[]>;
  /** Header names lower-cased. */
  headers: Record<string, string | undefined>;
  body: Buffer;
}

export interface Authenticated {
  caller: Caller;
  /** The region of the credential scope: keys and aliases are looked up there. */
  region: string;
}

const ALGORITHM = 'AWS4-HMAC-SHA256';
const SERVICE = 'kms';
/**
 * How far a header signature's date may be from the service clock, either way. AWS: "a request
 * must reach AWS within five minutes of the time stamp in the request" (IAM User Guide, Signing
 * AWS API requests); KMS answers "Signature expired: … (… - 5 min.)" (aws-sdk-js-v3#6400).
 */
const MAX_SKEW_MINUTES = 5;
const MAX_SKEW_MS = MAX_SKEW_MINUTES * 60 * 1000;
const REGION = /^[a-z0-9-]{1,32}$/;

export interface SignatureParts {
  accessKeyId: string;
  shortDate: string;
  region: string;
  service: string;
  signedHeaders: string[];
  signature: string;
  amzDate: string;
  /** Present for presigned (query string) requests. */
  expiresSeconds?: number;
}

/**
 * Signature Version 4 verification. The signature maths is the AWS SDK's own signer
 * (@smithy/signature-v4): the request is signed again with the caller's secret and the
 * same date, signed headers and body, and the two signatures are compared in constant time.
 *
 * strict: every access key must be in the credentials file and every signature must verify.
 * permissive: a well-formed signature from any access key is accepted without verification
 * and mapped to the default account; keys that are in the credentials file are still verified.
 */
export class SigV4Authenticator {
  /** Presigned (query-string) requests: the SDK's own presigner, one per access key and region. */
  private readonly signers = new Map<string, SignatureV4>();
  private readonly signatures = new HeaderSignatures();

  constructor(
    private readonly mode: AuthMode,
    private readonly credentials: Credentials,
    private readonly defaultAccountId: string,
    private readonly clock: Clock,
  ) {}

  async authenticate(request: SignedRequest): Promise<Authenticated> {
    const parts = parseSignature(request);
    if (parts.service !== SERVICE) {
      throw new KmsError('InvalidSignatureException', `Credential should be scoped to correct service: '${SERVICE}'.`);
    }
    if (!REGION.test(parts.region)) {
      throw new KmsError('InvalidSignatureException', `Credential should be scoped to a valid region, not '${parts.region}'.`);
    }
    this.checkTime(parts);
    const key = this.credentials.find(parts.accessKeyId);
    if (!key) {
      if (this.mode === 'strict') {
        throw new KmsError('UnrecognizedClientException', 'The security token included in the request is invalid.');
      }
      const accountId = this.defaultAccountId;
      return {
        region: parts.region,
        caller: { accountId, principalArn: `arn:aws:iam::${accountId}:root`, accessKeyId: parts.accessKeyId },
      };
    }
    checkSessionToken(request, key);
    await this.verify(request, parts, key);
    return { region: parts.region, caller: callerOf(key) };
  }

  private checkTime(parts: SignatureParts): void {
    const signedAt = amzDateOf(parts.amzDate)?.ms;
    if (signedAt === undefined) {
      // AWS's (Coral's) text; e.g. a repeated X-Amz-Date header arrives as "<date>, <date>".
      throw new KmsError('IncompleteSignatureException', `Date must be in ISO-8601 'basic format'. Got '${parts.amzDate.slice(0, 100)}'. See http://en.wikipedia.org/wiki/ISO_8601`);
    }
    if (parts.amzDate.slice(0, 8) !== parts.shortDate) {
      throw new KmsError('IncompleteSignatureException', `Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date from HTTP: '${parts.shortDate}' != '${parts.amzDate.slice(0, 8)}'`);
    }
    const now = this.clock.now();
    if (parts.expiresSeconds !== undefined) {
      if (now > signedAt + parts.expiresSeconds * 1000) {
        throw new KmsError('InvalidSignatureException', `Signature expired: ${parts.amzDate} is now earlier than ${formatAmzDate(now - parts.expiresSeconds * 1000)}`);
      }
      if (signedAt - now > MAX_SKEW_MS) throw notYetValid(parts.amzDate, now);
      return;
    }
    if (now - signedAt > MAX_SKEW_MS) {
      throw new KmsError(
        'InvalidSignatureException',
        `Signature expired: ${parts.amzDate} is now earlier than ${formatAmzDate(now - MAX_SKEW_MS)} (${formatAmzDate(now)} - ${MAX_SKEW_MINUTES} min.)`,
      );
    }
    if (signedAt - now > MAX_SKEW_MS) throw notYetValid(parts.amzDate, now);
  }

  private async verify(request: SignedRequest, parts: SignatureParts, key: AccessKey): Promise<void> {
    checkAmzHeadersSigned(request, parts.signedHeaders);
    const bodyHash = sha256Hex(request.body);
    const declaredHash = request.headers['x-amz-content-sha256'];
    if (declaredHash !== undefined && declaredHash !== bodyHash) {
      // The signer would trust this header as the payload hash; the body must match it.
      throw signatureMismatch();
    }
    const headers = signedHeaderValues(request, parts.signedHeaders, signatureMismatch);
    const signedAt = amzDateOf(parts.amzDate)!;
    const signingDate = new Date(signedAt.ms);
    let expected: string | undefined;
    if (parts.expiresSeconds === undefined) {
      expected = await this.signatures.expected(
        // Copied only when a parameter repeats (the audit endpoint): a KMS request's query is used as it is.
        { method: request.method, path: request.path, query: request.repeatedQuery ? { ...request.query, ...request.repeatedQuery } : request.query, headers, payloadHash: bodyHash },
        { accessKeyId: key.accessKeyId, secretAccessKey: key.secretAccessKey },
        { signingDate, longDate: signedAt.long, region: parts.region, service: SERVICE, signedHeaders: parts.signedHeaders },
      );
    } else {
      const query: Record<string, string | string[]> = { ...request.query, ...request.repeatedQuery };
      delete query['X-Amz-Signature'];
      const presigned = await this.signerFor(key, parts.region).presign(
        { method: request.method, protocol: 'http:', hostname: request.host, path: request.path, headers, body: request.body, query },
        { signingDate, expiresIn: parts.expiresSeconds, signableHeaders: new Set(parts.signedHeaders), signingRegion: parts.region },
      );
      expected = presigned.query?.['X-Amz-Signature'] as string | undefined;
    }
    if (!expected || !constantTimeEqual(expected, parts.signature)) throw signatureMismatch();
  }

  private signerFor(key: AccessKey, region: string): SignatureV4 {
    const id = `${key.accessKeyId}/${region}`;
    let signer = this.signers.get(id);
    if (!signer) {
      signer = new SignatureV4({
        credentials: { accessKeyId: key.accessKeyId, secretAccessKey: key.secretAccessKey },
        region,
        service: SERVICE,
        sha256: Hash.bind(null, 'sha256'),
        uriEscapePath: true,
        applyChecksum: false,
      });
      this.signers.set(id, signer);
    }
    return signer;
  }
}

/**
 * The session token belongs to the access key: temporary credentials (an access key with a
 * `sessionToken` in the credentials file) are refused without theirs or with another, and a
 * long-term key is refused with any token, as AWS refuses both (UnrecognizedClientException,
 * "The security token included in the request is invalid."). Checked before the signature,
 * as AWS resolves the credentials before it verifies what they signed.
 */
function checkSessionToken(request: SignedRequest, key: AccessKey): void {
  const sent = request.headers['x-amz-security-token'] ?? ownValue(request.query, 'X-Amz-Security-Token');
  const valid = key.sessionToken === undefined ? sent === undefined : sent !== undefined && constantTimeEqual(sent, key.sessionToken);
  if (!valid) throw new KmsError('UnrecognizedClientException', 'The security token included in the request is invalid.');
}

/**
 * x-amz-* headers sent with a request must be signed: "You must include the host header … and
 * any x-amz-* headers in the signature" (IAM User Guide, Create a signed AWS API request). An
 * unsigned X-Amz-Target would otherwise let a captured request be replayed, within the skew
 * window, as another operation over the same body. The text is Coral's for a header that must
 * be signed ("'Host' or ':authority' must be a 'SignedHeader' in the AWS Authorization.",
 * InvalidSignatureException, aws/aws-sdk-js-v3#3796). X-Amz-Security-Token is exempt: the same
 * guide lets services take it added after the signature (the SigV4 test suite's
 * post-sts-header-after). X-Amzn-Trace-Id (x-amzn-, unsigned by every SDK) is not x-amz-*.
 */
function checkAmzHeadersSigned(request: SignedRequest, signedHeaders: readonly string[]): void {
  for (const name of Object.keys(request.headers)) {
    if (!name.startsWith('x-amz-') || name === 'x-amz-security-token' || request.headers[name] === undefined) continue;
    if (!signedHeaders.includes(name)) throw new KmsError('InvalidSignatureException', `'${name}' must be a 'SignedHeader' in the AWS Authorization.`);
  }
}

export function parseSignature(request: SignedRequest): SignatureParts {
  const authorization = request.headers.authorization;
  if (authorization !== undefined) return parseAuthorizationHeader(authorization, request);
  if (request.query['X-Amz-Algorithm'] !== undefined) return parsePresignedQuery(request.query);
  throw new KmsError('MissingAuthenticationTokenException', 'Missing Authentication Token');
}

/** `AWS4-HMAC-SHA256 Credential=…, SignedHeaders=…, Signature=…` as every AWS SDK writes it. */
const SDK_AUTHORIZATION = /^AWS4-HMAC-SHA256 Credential=([^,\s]+), ?SignedHeaders=([^,\s]+), ?Signature=([0-9a-f]+)$/;

function parseAuthorizationHeader(authorization: string, request: SignedRequest): SignatureParts {
  const amzDate = request.headers['x-amz-date'] ?? signingDateOfDateHeader(request.headers.date);
  const sdkForm = amzDate ? SDK_AUTHORIZATION.exec(authorization) : null;
  if (sdkForm) return signatureParts(sdkForm[1], sdkForm[2], sdkForm[3], amzDate!);
  const space = authorization.indexOf(' ');
  const algorithm = space < 0 ? authorization : authorization.slice(0, space);
  if (algorithm !== ALGORITHM) {
    throw new KmsError('IncompleteSignatureException', `Unsupported AWS 'algorithm': '${algorithm}'. Use ${ALGORITHM}.`);
  }
  const fields = new Map<string, string>();
  for (const part of authorization.slice(space + 1).split(',')) {
    const eq = part.indexOf('=');
    if (eq > 0) fields.set(part.slice(0, eq).trim(), part.slice(eq + 1).trim());
  }
  const missing = ['Credential', 'SignedHeaders', 'Signature'].filter((f) => !fields.get(f));
  if (missing.length > 0) {
    throw new KmsError(
      'IncompleteSignatureException',
      `${missing.map((f) => `Authorization header requires '${f}' parameter.`).join(' ')} Authorization=${authorization.replace(/Signature=[0-9a-f]*/, 'Signature=…')}`,
    );
  }
  if (!amzDate) {
    throw new KmsError('IncompleteSignatureException', "Authorization header requires existence of either a 'X-Amz-Date' or a 'Date' header.");
  }
  return signatureParts(fields.get('Credential')!, fields.get('SignedHeaders')!, fields.get('Signature')!, amzDate);
}

/**
 * The signing date of a request without X-Amz-Date, from its Date header: in ISO 8601 basic
 * format as the KMS API Reference allows ("If the Date header is specified in the ISO 8601 basic
 * format, X-Amz-Date is not required. When X-Amz-Date is used, it always overrides the value of
 * the Date header", Common Parameters), or in the HTTP form of the AWS SigV4 test suite
 * (get-vanilla: `Date: Mon, 09 Sep 2011 23:36:00 GMT` signs as 20110909T233600Z). Anything else
 * is returned as it is, to be refused as no ISO 8601 date.
 */
function signingDateOfDateHeader(date: string | undefined): string | undefined {
  if (date === undefined || !HTTP_DATE.test(date)) return date;
  const ms = Date.parse(date);
  return Number.isNaN(ms) ? date : formatAmzDate(ms);
}

const HTTP_DATE = /^(Mon|Tue|Wed|Thu|Fri|Sat|Sun), \d{2} (Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec) \d{4} \d{2}:\d{2}:\d{2} GMT$/;

function parsePresignedQuery(query: Record<string, string>): SignatureParts {
  if (query['X-Amz-Algorithm'] !== ALGORITHM) {
    throw new KmsError('IncompleteSignatureException', `Unsupported AWS 'algorithm': '${query['X-Amz-Algorithm']}'. Use ${ALGORITHM}.`);
  }
  const missing = ['X-Amz-Credential', 'X-Amz-SignedHeaders', 'X-Amz-Signature', 'X-Amz-Date', 'X-Amz-Expires'].filter((p) => !query[p]);
  if (missing.length > 0) {
    throw new KmsError('IncompleteSignatureException', `AWS query-string parameters missing: ${missing.join(', ')}.`);
  }
  const expires = Number(query['X-Amz-Expires']);
  if (!Number.isInteger(expires) || expires < 1 || expires > 7 * 24 * 3600) {
    throw new KmsError('IncompleteSignatureException', 'X-Amz-Expires must be a whole number of seconds from 1 to 604800.');
  }
  return signatureParts(query['X-Amz-Credential'], query['X-Amz-SignedHeaders'], query['X-Amz-Signature'], query['X-Amz-Date'], expires);
}

/**
 * A signature's parts, the credential scope checked first. One literal: spreading the scope
 * into it (as before) put every request on V8's slow path for properties defined after a
 * spread, ~5-10 µs per request in a microbenchmark against ~1 µs this way.
 */
function signatureParts(credential: string, signedHeaderList: string, signature: string, amzDate: string, expiresSeconds?: number): SignatureParts {
  const parts = credential.split('/');
  if (parts.length !== 5 || parts[4] !== 'aws4_request' || !parts[0]) {
    throw new KmsError(
      'IncompleteSignatureException',
      `Credential should be scoped to a valid region and service, in the form <access key>/<date>/<region>/<service>/aws4_request; got '${credential.split('/').slice(1).join('/')}'.`,
    );
  }
  return { accessKeyId: parts[0], shortDate: parts[1], region: parts[2], service: parts[3], signedHeaders: parseSignedHeaders(signedHeaderList), signature, amzDate, expiresSeconds };
}

/** SignedHeaders lists already parsed: a client sends the same few lists again and again. */
const signedHeaderLists = new Map<string, string[]>();

function parseSignedHeaders(list: string): string[] {
  const known = signedHeaderLists.get(list);
  if (known) return known;
  const names = parseSignedHeaderList(list);
  if (signedHeaderLists.size >= 256) signedHeaderLists.clear();
  signedHeaderLists.set(list, names);
  return names;
}

function parseSignedHeaderList(list: string): string[] {
  const names = list.split(';').map((h) => h.trim().toLowerCase());
  if (names.some((n) => n === '') || !names.includes('host')) {
    throw new KmsError('IncompleteSignatureException', "SignedHeaders must include 'host'.");
  }
  return names;
}

export function parseAmzDate(value: string): number | undefined {
  return amzDateOf(value)?.ms;
}

/** The last X-Amz-Date seen: every request signed within the same second carries the same one. */
let lastAmzDate: { value: string; parsed: { ms: number; long: string } | undefined } = { value: '', parsed: undefined };

/** An X-Amz-Date's time and the signer's own rendering of it (they differ for out-of-range fields such as month 13). */
function amzDateOf(value: string): { ms: number; long: string } | undefined {
  if (value === lastAmzDate.value) return lastAmzDate.parsed;
  const m = /^(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})Z$/.exec(value);
  const ms = m ? Date.UTC(+m[1], +m[2] - 1, +m[3], +m[4], +m[5], +m[6]) : NaN;
  const parsed = Number.isNaN(ms) ? undefined : { ms, long: formatAmzDate(ms) };
  lastAmzDate = { value, parsed };
  return parsed;
}

function formatAmzDate(ms: number): string {
  return new Date(ms).toISOString().replace(/[-:]/g, '').replace(/\.\d{3}/, '');
}

function notYetValid(amzDate: string, now: number): KmsError {
  return new KmsError('InvalidSignatureException', `Signature not yet current: ${amzDate} is still later than ${formatAmzDate(now + MAX_SKEW_MS)} (${formatAmzDate(now)} + ${MAX_SKEW_MINUTES} min.)`);
}

/**
 * The values of the signed headers, by the names SignedHeaders lists. The names come from the
 * client: they are looked up among the request's own headers only (a "constructor" would
 * otherwise find Object.prototype's function) and kept as own properties.
 */
export function signedHeaderValues(request: SignedRequest, signedHeaders: readonly string[], missing: (name: string) => Error): Record<string, string> {
  return ownRecord(
    signedHeaders.map((name) => {
      const value = name === 'host' ? request.host : ownValue(request.headers, name);
      if (value === undefined) throw missing(name);
      return [name, value] as const;
    }),
  );
}

function signatureMismatch(): KmsError {
  return new KmsError(
    'InvalidSignatureException',
    'The request signature we calculated does not match the signature you provided. Check your AWS Secret Access Key and signing method. Consult the service documentation for details.',
  );
}

const SIGNING_KEY_CACHE_SIZE = 1024;

/** A request as the Authorization-header signature covers it (header names lower-cased). */
export interface CanonicalInput {
  method: string;
  path: string;
  /** URL-decoded query parameters (every value of a repeated one). */
  query: Record<string, string | string[]>;
  /** The signed headers only, with their received values. */
  headers: Record<string, string>;
  /** Hex SHA-256 of the body. */
  payloadHash: string;
}

/**
 * The expected signature of an Authorization-header request, computed the way
 * SignatureV4.sign() computes it but without its per-request cloning and re-derivation:
 * the canonical request is built once with the SDK's own canonicalisation
 * (@smithy/signature-v4 getCanonicalHeaders, getCanonicalQuery, getCanonicalPath), and the
 * derived signing key (four HMACs, the same for a whole day) is kept per
 * (secret, date, region, service). Checked against the AWS SigV4 test suite and against
 * SignatureV4.sign() in test/unit/sigv4-signatures.test.ts.
 */
export class HeaderSignatures {
  private readonly keys = new Map<string, Buffer>();
  private readonly canonicaliser = new Canonicaliser();

  async expected(
    request: CanonicalInput,
    credentials: { accessKeyId: string; secretAccessKey: string },
    scope: { signingDate: Date; longDate?: string; region: string; service: string; signedHeaders: readonly string[] },
  ): Promise<string> {
    const longDate = scope.longDate ?? formatAmzDate(scope.signingDate.getTime());
    const shortDate = longDate.slice(0, 8);
    // The signed headers as the client sent them (a signed Date header included: the AWS SigV4
    // test suite signs it as sent), but X-Amz-Date, when signed, is the rendering of the signing
    // date, as SignatureV4.sign() writes it (they differ for out-of-range fields such as month 13).
    const headers = ownRecord(Object.entries(request.headers).filter(([name]) => name !== 'authorization'));
    if (Object.hasOwn(headers, 'x-amz-date')) headers['x-amz-date'] = longDate;
    const canonicalHeaders = getCanonicalHeaders({ headers } as never, undefined, new Set(scope.signedHeaders));
    const canonicalRequest = this.canonicaliser.canonicalRequest(
      { method: request.method, path: request.path, query: request.query, headers, protocol: 'http:', hostname: '' } as never,
      canonicalHeaders,
      request.payloadHash,
    );
    const credentialScope = createScope(shortDate, scope.region, scope.service);
    const stringToSign = `${ALGORITHM}\n${longDate}\n${credentialScope}\n${sha256Hex(canonicalRequest)}`;
    const signingKey = await this.signingKey(credentials, shortDate, scope.region, scope.service);
    return createHmac('sha256', signingKey).update(stringToSign).digest('hex');
  }

  private async signingKey(credentials: { accessKeyId: string; secretAccessKey: string }, shortDate: string, region: string, service: string): Promise<Buffer> {
    const id = `${credentials.secretAccessKey}\n${shortDate}\n${region}\n${service}`;
    const cached = this.keys.get(id);
    if (cached) return cached;
    const derived = Buffer.from(await getSigningKey(Hash.bind(null, 'sha256'), credentials, shortDate, region, service));
    if (this.keys.size >= SIGNING_KEY_CACHE_SIZE) this.keys.delete(this.keys.keys().next().value!);
    this.keys.set(id, derived);
    return derived;
  }
}

/** The SDK signer's canonical-request builder (protected there); its credentials are never read. */
class Canonicaliser extends SignatureV4 {
  constructor() {
    super({ credentials: { accessKeyId: '', secretAccessKey: '' }, region: 'us-east-1', service: SERVICE, sha256: Hash.bind(null, 'sha256'), uriEscapePath: true, applyChecksum: false });
  }

  canonicalRequest(...args: Parameters<SignatureV4['createCanonicalRequest']>): string {
    return this.createCanonicalRequest(...args);
  }
}

function sha256Hex(data: string | Buffer): string {
  // One-shot: no Hash object per request (node ≥ 20.12).
  return hash('sha256', data, 'hex');
}

function constantTimeEqual(a: string, b: string): boolean {
  const ab = Buffer.from(a);
  const bb = Buffer.from(b);
  return ab.length === bb.length && timingSafeEqual(ab, bb);
}
