import { createHash, createHmac } from 'node:crypto';
import { expect } from 'chai';

/** The Huawei dialect's tests: token-authenticated JSON requests against a running test server. */

export type Row = Record<string, any>;

export interface Reply {
  status: number;
  body: Row;
  raw: string;
}

/** The project every Huawei test uses unless it names another. */
export const PROJECT = '0123456789abcdef0123456789abcdef';

/**
 * Requests to `/v1.0/{project}/kms/…` of the server at `endpoint()` (read at each request: the
 * server starts in a `before` hook). A string or byte body is sent as written, so a test can
 * send JSON that JSON.stringify would change ("__proto__" members, duplicates, malformed text,
 * bytes that are not UTF-8).
 */
export function huaweiClient(endpoint: () => string, token = 'permissive-token') {
  async function request(method: string, path: string, body?: unknown, project = PROJECT): Promise<Reply> {
    const res = await fetch(`${endpoint()}/v1.0/${project}/kms/${path}`, {
      method,
      headers: { 'Content-Type': 'application/json', 'X-Auth-Token': token },
      ...(body === undefined ? {} : { body: typeof body === 'string' || body instanceof Uint8Array ? body : JSON.stringify(body) }),
    });
    const raw = await res.text();
    return { status: res.status, body: raw ? (JSON.parse(raw) as Row) : {}, raw };
  }
  const hw = (action: string, body: unknown, project = PROJECT) => request('POST', action, body, project);
  /** A new key (create-key must succeed); its key_id. */
  async function newKey(alias: string, extra: Row = {}): Promise<string> {
    const created = await hw('create-key', { key_alias: alias, ...extra });
    expect(created.status, created.raw).to.equal(200);
    return created.body.key_info.key_id as string;
  }
  return { request, hw, newKey };
}

/** The dialect's error envelope with this status and code, and no stack trace in it; the message. */
export function expectHuaweiError(reply: Reply, status: number, code: string): string {
  expect(reply.status, reply.raw).to.equal(status);
  expect(Object.keys(reply.body)).to.deep.equal(['error']);
  expect(reply.body.error.error_code, reply.raw).to.equal(code);
  expect(reply.body.error.error_msg).to.be.a('string').and.not.match(/\n\s+at /);
  return reply.body.error.error_msg as string;
}

/** How a request authenticates: an IAM token, an AK/SK signature (optionally altered after signing), or nothing. */
export type HuaweiAuth = { token: string } | { ak: string; sk: string; tamper?: (h: Record<string, string>, body: string) => string } | { none: true };

/**
 * SDK-HMAC-SHA256 as the Huawei Cloud SDKs sign (AK/SK Signing and Authentication Guide):
 * canonical request = method, path with a trailing "/", sorted query, signed headers, body hash.
 */
export function signSdkHmacSha256(method: string, url: URL, headers: Record<string, string>, body: string, ak: string, sk: string): void {
  const names = Object.keys(headers).map((h) => h.toLowerCase()).sort();
  const lower: Record<string, string> = {};
  for (const [k, v] of Object.entries(headers)) lower[k.toLowerCase()] = v.trim();
  const uri = url.pathname.endsWith('/') ? url.pathname : `${url.pathname}/`;
  const canonical = [
    method,
    uri,
    '',
    names.map((n) => `${n}:${lower[n]}\n`).join(''),
    names.join(';'),
    createHash('sha256').update(body).digest('hex'),
  ].join('\n');
  const toSign = `SDK-HMAC-SHA256\n${headers['X-Sdk-Date']}\n${createHash('sha256').update(canonical).digest('hex')}`;
  const signature = createHmac('sha256', sk).update(toSign).digest('hex');
  headers.Authorization = `SDK-HMAC-SHA256 Access=${ak}, SignedHeaders=${names.join(';')}, Signature=${signature}`;
}

/** An X-Sdk-Date of now, or `offsetMs` from now. */
export function sdkDate(offsetMs = 0): string {
  return new Date(Date.now() + offsetMs).toISOString().replace(/[-:]/g, '').replace(/\.\d{3}/, '');
}

/** POST `action` of `server` as `auth` (a token anyone may use under permissive authentication unless named). */
export async function huaweiRequestAs(server: { endpoint: string }, action: string, body: unknown, auth: HuaweiAuth = { token: 'any-token' }, project = PROJECT): Promise<Reply> {
  const url = new URL(`${server.endpoint}/v1.0/${project}/kms/${action}`);
  const text = typeof body === 'string' ? body : JSON.stringify(body);
  const headers: Record<string, string> = { 'Content-Type': 'application/json' };
  let sent = text;
  if ('token' in auth) headers['X-Auth-Token'] = auth.token;
  if ('ak' in auth) {
    headers.Host = url.host;
    headers['X-Sdk-Date'] = sdkDate();
    signSdkHmacSha256('POST', url, headers, text, auth.ak, auth.sk);
    if (auth.tamper) sent = auth.tamper(headers, text);
    delete headers.Host;
  }
  const res = await fetch(url, { method: 'POST', headers, body: sent });
  const raw = await res.text();
  return { status: res.status, body: raw ? (JSON.parse(raw) as Row) : {}, raw };
}
