import { Hash } from '@smithy/hash-node';
import { SignatureV4 } from '@smithy/signature-v4';
import type { TestServer } from './server';

export type AuditQuery = Record<string, string | string[]>;

/**
 * A SigV4-signed GET on the audit endpoint, as any AWS-signing client would send it: signed
 * headers, or (presign) the signature in the query string. A parameter given as an array is
 * repeated in the URL and signed so.
 */
export async function auditGet(
  server: TestServer,
  who: { accessKeyId: string; secretAccessKey: string } | undefined,
  route: string,
  query: AuditQuery = {},
  options: { presign?: boolean } = {},
): Promise<{ status: number; body: Record<string, any> }> {
  const url = new URL(server.endpoint);
  let headers: Record<string, string> = {};
  let sent = query;
  if (who) {
    const signer = new SignatureV4({ credentials: who, region: 'us-east-1', service: 'kms', sha256: Hash.bind(null, 'sha256'), uriEscapePath: true });
    const request = { method: 'GET', protocol: 'http:', hostname: url.hostname, port: Number(url.port), path: route, query, headers: { host: url.host } };
    if (options.presign) {
      sent = (await signer.presign(request)).query as AuditQuery;
    } else {
      headers = (await signer.sign(request)).headers as Record<string, string>;
      delete headers.host;
    }
  }
  const search = new URLSearchParams(Object.entries(sent).flatMap(([k, v]) => (Array.isArray(v) ? v : [v]).map((one): [string, string] => [k, one]))).toString();
  const response = await fetch(`${server.endpoint}${route}?${search}`, { headers });
  return { status: response.status, body: (await response.json()) as Record<string, any> };
}
