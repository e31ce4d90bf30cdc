import { createHash, createHmac, timingSafeEqual } from 'node:crypto';
import { type AccessKey, callerOf, type Credentials } from '../../access/credentials';
import type { Caller } from '../../access/principal';
import type { Clock } from '../../clock';
import type { AuthMode } from '../../config/config';
import { ownValue } from '../own-properties';
import { HuaweiError } from './errors';

/** The raw request as received, for authentication. */
export interface HuaweiSignedRequest {
  method: string;
  /** Path as sent, still percent-encoded, without the query string. */
  rawPath: string;
  /** Query string as sent, without '?'. */
  rawQuery: string;
  /** Header names lower-cased. */
  headers: Record<string, string | string[] | undefined>;
  body: Buffer;
}

const ALGORITHM = 'SDK-HMAC-SHA256';
const MAX_SKEW_MS = 15 * 60 * 1000;
const UNSIGNED_PAYLOAD = 'UNSIGNED-PAYLOAD';
/** A token as IAM issues them is a long printable string; anything else is not well-formed. */
const WELL_FORMED_TOKEN = /^[\x21-\x7e]{1,16384}$/;

/**
 * Authentication of the Huawei Cloud / Open Telekom Cloud dialect, two ways:
 *
 * - `X-Auth-Token` (KMS API reference, request header tables of every API): in those clouds
 *   an IAM token; here a static token listed in the credentials file's `authTokens`.
 * - AK/SK request signing, the default of the Huawei Cloud SDKs: `Authorization:
 *   SDK-HMAC-SHA256 Access=<AK>, SignedHeaders=<h1;h2>, Signature=<hex>` with `X-Sdk-Date`.
 *   The canonical request follows the signer of the Huawei Cloud SDK core
 *   (huaweicloudsdkcore/signer/signer.py, "AK/SK Signing and Authentication Guide"):
 *     METHOD \n CanonicalURI \n CanonicalQueryString \n CanonicalHeaders \n SignedHeaders \n HexSHA256(body)
 *   where CanonicalURI is every path segment URI-encoded (RFC 3986 unreserved kept) with a
 *   trailing "/" added, the query is sorted and encoded the same way, the headers are
 *   "name:trimmed value\n" in SignedHeaders order, and the body hash may be replaced by the
 *   X-Sdk-Content-Sha256 header. StringToSign = "SDK-HMAC-SHA256\n" X-Sdk-Date "\n"
 *   HexSHA256(CanonicalRequest); Signature = HexHMAC-SHA256(SK, StringToSign). AK/SK are the
 *   credentials file's accessKeys (accessKeyId / secretAccessKey).
 *
 * strict: tokens and access keys must be in the credentials file, signatures must verify.
 * permissive: any well-formed token or signature is accepted and mapped to the default
 * account; tokens and keys that are in the file still map to their principals (and listed
 * keys are still verified), as in the AWS dialect.
 */
export class HuaweiAuthenticator {
  constructor(
    private readonly mode: AuthMode,
    private readonly credentials: Credentials,
    private readonly defaultAccountId: string,
    private readonly clock: Clock,
  ) {}

  authenticate(request: HuaweiSignedRequest): Caller {
    const authorization = header(request, 'authorization');
    if (authorization !== undefined && authorization.startsWith(`${ALGORITHM} `)) return this.bySignature(request, authorization);
    const token = header(request, 'x-auth-token');
    if (token !== undefined && token !== '') return this.byToken(token);
    throw new HuaweiError('KMS.0301', 'The value of X-Auth-Token is null or invalid.', 403);
  }

  private byToken(token: string): Caller {
    const known = this.credentials.findToken(token);
    if (known) {
      return {
        accountId: known.accountId,
        principalArn: known.principalArn ?? `arn:aws:iam::${known.accountId}:root`,
        accessKeyId: 'x-auth-token',
      };
    }
    if (this.mode === 'strict' || !WELL_FORMED_TOKEN.test(token)) throw new HuaweiError('KMS.0302', 'Invalid X-Auth-Token.', 401);
    return this.defaultCaller('x-auth-token');
  }

  private bySignature(request: HuaweiSignedRequest, authorization: string): Caller {
    const parts = parseAuthorization(authorization);
    const sdkDate = header(request, 'x-sdk-date');
    const signedAt = sdkDate === undefined ? undefined : parseSdkDate(sdkDate);
    if (sdkDate === undefined || signedAt === undefined) throw signatureError('X-Sdk-Date is missing or malformed');
    if (!parts.signedHeaders.includes('x-sdk-date')) throw signatureError('X-Sdk-Date must be a signed header');
    if (Math.abs(this.clock.now() - signedAt) > MAX_SKEW_MS) throw signatureError('X-Sdk-Date differs from the service time by more than 15 minutes');
    const key = this.credentials.find(parts.access);
    if (!key) {
      if (this.mode === 'strict') throw signatureError('unknown access key');
      return this.defaultCaller(parts.access);
    }
    verify(request, parts, key, sdkDate);
    return callerOf(key);
  }

  private defaultCaller(accessKeyId: string): Caller {
    const accountId = this.defaultAccountId;
    return { accountId, principalArn: `arn:aws:iam::${accountId}:root`, accessKeyId };
  }
}

interface SignatureParts {
  access: string;
  signedHeaders: string[];
  signature: string;
}

function parseAuthorization(authorization: string): SignatureParts {
  const fields = new Map<string, string>();
  for (const part of authorization.slice(ALGORITHM.length + 1).split(',')) {
    const eq = part.indexOf('=');
    if (eq > 0) fields.set(part.slice(0, eq).trim(), part.slice(eq + 1).trim());
  }
  const access = fields.get('Access');
  const signedHeaders = fields.get('SignedHeaders');
  const signature = fields.get('Signature');
  if (!access || !signedHeaders || !signature || !/^[0-9a-f]{64}$/i.test(signature)) {
    throw signatureError('the Authorization header needs Access, SignedHeaders and Signature');
  }
  const names = signedHeaders.split(';').map((h) => h.trim().toLowerCase());
  if (names.some((n) => n === '')) throw signatureError('SignedHeaders is malformed');
  return { access, signedHeaders: names, signature: signature.toLowerCase() };
}

function verify(request: HuaweiSignedRequest, parts: SignatureParts, key: AccessKey, sdkDate: string): void {
  const bodyHash = createHash('sha256').update(request.body).digest('hex');
  const declared = header(request, 'x-sdk-content-sha256');
  let payloadHash = bodyHash;
  if (declared !== undefined) {
    // The signer trusts this header as the payload hash; a real hash must match the body.
    if (declared !== UNSIGNED_PAYLOAD && declared.toLowerCase() !== bodyHash) throw signatureError('verify aksk signature fail');
    payloadHash = declared;
  }
  const canonicalHeaders = parts.signedHeaders.map((name) => {
    const value = header(request, name);
    if (value === undefined) throw signatureError('verify aksk signature fail');
    return `${name}:${value.trim()}\n`;
  });
  const canonicalRequest = [
    request.method.toUpperCase(),
    canonicalUri(request.rawPath),
    canonicalQuery(request.rawQuery),
    canonicalHeaders.join(''),
    parts.signedHeaders.join(';'),
    payloadHash,
  ].join('\n');
  const stringToSign = `${ALGORITHM}\n${sdkDate}\n${createHash('sha256').update(canonicalRequest, 'utf8').digest('hex')}`;
  const expected = createHmac('sha256', key.secretAccessKey).update(stringToSign, 'utf8').digest('hex');
  const a = Buffer.from(expected);
  const b = Buffer.from(parts.signature);
  if (a.length !== b.length || !timingSafeEqual(a, b)) throw signatureError('verify aksk signature fail');
}

/** RFC 3986 encoding: everything but A-Z a-z 0-9 - _ . ~ is percent-encoded. */
export function uriEncode(value: string): string {
  return encodeURIComponent(value).replace(/[!'()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);
}

function safeDecode(value: string): string {
  try {
    return decodeURIComponent(value);
  } catch {
    throw signatureError('the request path or query is not valid percent-encoding');
  }
}

export function canonicalUri(rawPath: string): string {
  const path = safeDecode(rawPath)
    .split('/')
    .map((segment) => uriEncode(segment))
    .join('/');
  return path.endsWith('/') ? path : `${path}/`;
}

export function canonicalQuery(rawQuery: string): string {
  if (rawQuery === '') return '';
  const pairs = rawQuery
    .split('&')
    .filter((p) => p !== '')
    .map((p) => {
      const eq = p.indexOf('=');
      const k = safeDecode((eq < 0 ? p : p.slice(0, eq)).replace(/\+/g, ' '));
      const v = eq < 0 ? '' : safeDecode(p.slice(eq + 1).replace(/\+/g, ' '));
      return [uriEncode(k), uriEncode(v)] as const;
    });
  pairs.sort(([ak, av], [bk, bv]) => (ak < bk ? -1 : ak > bk ? 1 : av < bv ? -1 : av > bv ? 1 : 0));
  return pairs.map(([k, v]) => `${k}=${v}`).join('&');
}

function parseSdkDate(value: string): number | undefined {
  const m = /^(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})Z$/.exec(value);
  if (!m) return undefined;
  const ms = Date.UTC(+m[1], +m[2] - 1, +m[3], +m[4], +m[5], +m[6]);
  // Date.UTC rolls over (month 13 is January of the next year, hour 24 the next day): a date
  // that does not print back as itself is malformed, not merely far from the service time.
  if (Number.isNaN(ms) || new Date(ms).toISOString().replace(/[-:]|\.\d{3}/g, '') !== value) return undefined;
  return ms;
}

/** A header by its lower-case name; SignedHeaders names come from the client, so own entries only. */
function header(request: HuaweiSignedRequest, name: string): string | undefined {
  const value = ownValue(request.headers, name);
  return Array.isArray(value) ? value.join(',') : value;
}

/** What Huawei's API gateway answers for a failed AK/SK check (401, APIGW.0301). */
function signatureError(reason: string): HuaweiError {
  return new HuaweiError('APIGW.0301', `Incorrect IAM authentication information: ${reason}.`, 401);
}
