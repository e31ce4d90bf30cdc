import { KMSClient } from '@aws-sdk/client-kms';
import { Sha256 } from '@aws-crypto/sha256-browser';
import { SignatureV4 } from '@smithy/signature-v4';

/** What the tab remembers: kept in sessionStorage only, so it ends with the tab. */
export interface Session {
  accessKeyId: string;
  secretAccessKey: string;
  region: string;
}

const STORAGE_KEY = 'p11kms.console.session';

export function loadSession(): Session | undefined {
  try {
    const raw = sessionStorage.getItem(STORAGE_KEY);
    return raw ? (JSON.parse(raw) as Session) : undefined;
  } catch {
    return undefined;
  }
}

export function saveSession(session: Session | undefined): void {
  if (session) sessionStorage.setItem(STORAGE_KEY, JSON.stringify(session));
  else sessionStorage.removeItem(STORAGE_KEY);
}

/** The AWS SDK's own KMS client, pointed at the server that served this page. */
export function kmsClient(session: Session): KMSClient {
  return new KMSClient({
    endpoint: location.origin,
    region: session.region,
    credentials: { accessKeyId: session.accessKeyId, secretAccessKey: session.secretAccessKey },
    maxAttempts: 1,
  });
}

/** An AWS-style error as the SDK raises it, or as the audit endpoint answers. */
export class ApiError extends Error {
  constructor(
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

export function errorText(err: unknown): string {
  const e = err as { name?: string; code?: string; message?: string };
  const code = e instanceof ApiError ? e.code : e.name;
  return code && code !== 'Error' ? `${code}: ${e.message ?? ''}` : String(e.message ?? err);
}

/**
 * GET on p11kms's read-only audit endpoint, signed with SigV4 exactly as the KMS client signs
 * (service "kms", the session's region) by the SDK's own signer.
 */
export async function signedGet<T>(session: Session, path: string, params: Record<string, string | undefined>): Promise<T> {
  const query: Record<string, string> = {};
  for (const [k, v] of Object.entries(params)) if (v !== undefined && v !== '') query[k] = v;
  const signer = new SignatureV4({
    credentials: { accessKeyId: session.accessKeyId, secretAccessKey: session.secretAccessKey },
    region: session.region,
    service: 'kms',
    sha256: Sha256,
    uriEscapePath: true,
  });
  const signed = await signer.sign({
    method: 'GET',
    protocol: location.protocol,
    hostname: location.hostname,
    ...(location.port ? { port: Number(location.port) } : {}),
    path,
    query,
    headers: { host: location.host },
  });
  const headers = { ...signed.headers } as Record<string, string>;
  delete headers.host; // the browser sends the same Host itself and refuses to be told
  const search = new URLSearchParams(query).toString();
  const response = await fetch(`${path}${search ? `?${search}` : ''}`, { headers, credentials: 'omit', cache: 'no-store' });
  const body = (await response.json()) as T & { __type?: string; message?: string };
  if (!response.ok) throw new ApiError(body.__type ?? `HTTP ${response.status}`, body.message ?? response.statusText);
  return body;
}
