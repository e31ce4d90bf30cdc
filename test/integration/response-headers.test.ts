/**
 * Every answer p11kms makes outside the AWS JSON API carries `X-Content-Type-Options: nosniff`
 * (src/server/no-sniffing.ts), through a real server, its XKS proxy listener and real SigV4:
 * a browser pointed at any of them takes the Content-Type as sent and never sniffs HTML.
 */
import * as fs from 'node:fs';
import * as https from 'node:https';
import * as os from 'node:os';
import * as path from 'node:path';
import { Hash } from '@smithy/hash-node';
import { SignatureV4 } from '@smithy/signature-v4';
import { expect } from 'chai';
import { auditGet } from '../support/audit-api';
import { PROJECT } from '../support/huawei-client';
import { serverPerSuite, type TestServer } from '../support/server';
import { makeTestPki, type TestPki, writeXksSettings, XKS_CREDENTIAL } from '../support/xks';

const ANY_CALLER = { accessKeyId: 'AKIAHEADERSPROBE0001', secretAccessKey: 'any-secret' };

describe('X-Content-Type-Options: nosniff on every answer outside the AWS JSON API', function () {
  this.timeout(60_000);
  let server: TestServer;
  let pki: TestPki;
  serverPerSuite(
    () => {
      const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'p11kms-headers-'));
      pki = makeTestPki(dir);
      return { env: { P11KMS_XKS_PROXY_FILE: writeXksSettings(dir, pki) } };
    },
    (started) => (server = started),
  );

  /** Status, content type and X-Content-Type-Options of a request to the main listener. */
  const answer = async (route: string, init: RequestInit = {}) => {
    const res = await fetch(`${server.endpoint}${route}`, { redirect: 'manual', ...init });
    await res.arrayBuffer();
    return { route, status: res.status, type: res.headers.get('content-type'), nosniff: res.headers.get('x-content-type-options') };
  };

  /** The same on the XKS proxy's HTTPS listener; signed for kms-xks-proxy when `sign`. */
  const xksAnswer = async (method: string, route: string, sign: boolean) => {
    const url = new URL(`${server.xksEndpoint}${route}`);
    const body = method === 'POST' ? JSON.stringify({ requestMetadata: { awsPrincipalArn: 'arn:aws:iam::111122223333:user/alice', kmsRequestId: 'r-1', kmsOperation: 'CreateCustomKeyStore' } }) : '';
    let headers: Record<string, string> = { host: url.host, 'content-type': 'application/json' };
    if (sign) {
      const signer = new SignatureV4({ credentials: XKS_CREDENTIAL, region: 'us-east-1', service: 'kms-xks-proxy', sha256: Hash.bind(null, 'sha256') });
      headers = (await signer.sign({ method, protocol: 'https:', hostname: url.hostname, port: Number(url.port), path: url.pathname, headers, body })).headers;
    }
    return new Promise<{ route: string; status: number; type: string | undefined; nosniff: string | undefined }>((resolve, reject) => {
      const req = https.request({ method, host: url.hostname, port: url.port, path: url.pathname, headers, ca: fs.readFileSync(pki.caFile), servername: 'localhost' }, (res) => {
        res.resume();
        res.on('end', () => resolve({ route: `xks ${method} ${route}`, status: res.statusCode!, type: res.headers['content-type'], nosniff: res.headers['x-content-type-options'] as string | undefined }));
      });
      req.on('error', reject);
      req.end(body);
    });
  };

  it('says nosniff on /health, /ready, /metrics, the console, the audit endpoint, the Huawei dialect and unrouted requests', async () => {
    // Pre: only the console's three answers said it; the other ten did not.
    const signedAudit = await auditGet(server, ANY_CALLER, '/audit/events');
    expect(signedAudit.status, 'a signed audit read (permissive)').to.equal(200);
    const answers = [
      await answer('/health'),
      await answer('/ready'),
      await answer('/metrics'),
      await answer('/console/'),
      await answer('/console'),
      await answer('/console/no-such-file.js'),
      await answer('/audit/events'),
      await answer('/audit/verify'),
      await answer('/audit/events?evntName=Decrypt'),
      await answer('/'),
      await answer('/no-such-route'),
      await answer(`/v1.0/${PROJECT}/kms/list-keys`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{}' }),
      await answer(`/v1.0/${PROJECT}/kms/list-keys`, { method: 'POST', headers: { 'content-type': 'application/json', 'x-auth-token': 'permissive-token' }, body: '{}' }),
    ];
    expect(answers.map((a) => a.status)).to.deep.equal([200, 200, 200, 200, 301, 404, 403, 403, 403, 404, 404, 403, 200]);
    for (const a of answers) expect(a.nosniff, `${a.route} (${a.status} ${a.type})`).to.equal('nosniff');
  });

  it('says nosniff on every answer of the XKS proxy listener: ping, API answers and refusals', async () => {
    // Pre: none of them did.
    const answers = [
      await xksAnswer('GET', '/ping', false),
      await xksAnswer('POST', '/tenant-a/kms/xks/v1/health', true),
      await xksAnswer('POST', '/tenant-a/kms/xks/v1/health', false),
      await xksAnswer('GET', '/tenant-a/kms/xks/v1/health', false),
    ];
    expect(answers.map((a) => a.status)).to.deep.equal([200, 200, 401, 405]);
    for (const a of answers) expect(a.nosniff, `${a.route} (${a.status} ${a.type})`).to.equal('nosniff');
  });
});
