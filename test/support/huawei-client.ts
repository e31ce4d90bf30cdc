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
 * server starts in a `before` hook). A string body is sent as written, so a test can send
 * JSON that JSON.stringify would change ("__proto__" members, duplicates, malformed text).
 */
export function huaweiClient(endpoint: () => string, token = 'permissive-token') {
  async function request(method: string, path: string, body?: unknown, project = PROJECT): Promise<Reply> {
    const res = await fetch(`${endpoint()}/v1.0/${project}/kms/${path}`, {
      method,
      headers: { 'Content-Type': 'application/json', 'X-Auth-Token': token },
      ...(body === undefined ? {} : { body: typeof body === 'string' ? body : JSON.stringify(body) }),
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
