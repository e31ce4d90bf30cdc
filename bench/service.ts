/** The benchmarks' service: a real p11kms process in strict mode, and SigV4-signed requests to replay. */
import { type ChildProcess, spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { Hash } from '@smithy/hash-node';
import { SignatureV4 } from '@smithy/signature-v4';

const ROOT = path.resolve(__dirname, '..', '..');
const CREDENTIALS = { accessKeyId: 'AKIABENCH000000000', secretAccessKey: 'bench-secret' };
const REGION = 'us-east-1';

/**
 * Starts `p11kms serve` on a free port with `dataDir`; `env` adds or overrides settings. With
 * `processes` > 1 (--workers) it waits until every serving process listens.
 */
export async function startService(dataDir: string, env: Record<string, string> = {}, processes = 1): Promise<{ child: ChildProcess; endpoint: string }> {
  const credentialsFile = path.join(dataDir, '..', 'bench-credentials.json');
  fs.writeFileSync(credentialsFile, JSON.stringify({ accessKeys: [{ ...CREDENTIALS, accountId: '111122223333' }] }));
  const child = spawn(process.execPath, [path.join(ROOT, 'dist', 'src', 'main.js'), 'serve'], {
    env: {
      ...process.env,
      P11KMS_PORT: '0',
      P11KMS_DATA_DIR: dataDir,
      P11KMS_AUTH: 'strict',
      P11KMS_CREDENTIALS_FILE: credentialsFile,
      P11KMS_LOG_LEVEL: 'warn',
      ...env,
    },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  return { child, endpoint: await listeningEndpoint(child, processes, 'p11kms') };
}

/** The URL once `processes` serving processes of `child` have printed `listening on <url>`. */
export function listeningEndpoint(child: ChildProcess, processes: number, what: string): Promise<string> {
  return new Promise<string>((resolve, reject) => {
    let out = '';
    child.stdout!.on('data', (d: Buffer) => {
      out += d.toString();
      const lines = [...out.matchAll(/listening on (\S+)/g)];
      if (lines.length >= processes) resolve(lines[0][1]);
    });
    child.once('exit', (code) => reject(new Error(`${what} exited with ${code}`)));
  });
}

export async function signedRequest(endpoint: string, operation: string, body: unknown) {
  const url = new URL(endpoint);
  const signer = new SignatureV4({ credentials: CREDENTIALS, region: REGION, service: 'kms', sha256: Hash.bind(null, 'sha256') });
  const payload = JSON.stringify(body);
  const signed = await signer.sign({
    method: 'POST',
    protocol: 'http:',
    hostname: url.hostname,
    port: Number(url.port),
    path: '/',
    query: {},
    headers: { host: url.host, 'content-type': 'application/x-amz-json-1.1', 'x-amz-target': `TrentService.${operation}` },
    body: payload,
  });
  return { method: 'POST' as const, path: '/', headers: signed.headers as Record<string, string>, body: payload };
}

