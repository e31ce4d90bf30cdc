import * as fs from 'node:fs';
import * as http from 'node:http';
import * as https from 'node:https';
import * as path from 'node:path';
import type * as tls from 'node:tls';
import type { TestServer } from './server';

/** What production.test.ts and load-shedding.test.ts share. */

export const THROTTLED = 'You have exceeded the rate at which you may call KMS. Reduce the frequency of your calls.';
export const ROOT = path.resolve(__dirname, '..', '..', '..');

/** GET over HTTP(S); resolves with status, body and whether the agent reused its socket. */
export function get(url: string, options: https.RequestOptions = {}): Promise<{ status: number; body: string; reused: boolean; peerSerial?: string }> {
  const client = url.startsWith('https:') ? https : http;
  return new Promise((resolve, reject) => {
    const req = client.get(url, options, (res: http.IncomingMessage) => {
      let body = '';
      const socket = res.socket as tls.TLSSocket;
      const peerSerial = typeof socket.getPeerCertificate === 'function' ? socket.getPeerCertificate().serialNumber : undefined;
      res.on('data', (d: Buffer) => (body += d.toString()));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body, reused: req.reusedSocket, peerSerial }));
    });
    req.on('error', reject);
  });
}

/** Waits until `pattern` occurs at least `count` times in the service log. */
export async function waitForLogCount(server: TestServer, pattern: RegExp, count: number): Promise<void> {
  const global = new RegExp(pattern.source, 'g');
  for (let i = 0; i < 200; i++) {
    if ((server.stderr().match(global) ?? []).length >= count) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`the service log never had ${count} lines matching ${pattern}`);
}

/** An HSM profile like the default one with a pool of `size` sessions, `queue` waiters at most, and a queueing-time limit. */
export function smallPoolProfile(dir: string, size: number, queue: number, maxWaitMs = 1000): string {
  const base = JSON.parse(fs.readFileSync(path.join(ROOT, 'native-config', 'softhsm2.json'), 'utf8')) as Record<string, unknown>;
  const file = path.join(dir, `softhsm2-pool-${size}-${queue}-${maxWaitMs}.json`);
  fs.writeFileSync(file, JSON.stringify({ ...base, softhsm2ConfTemplate: path.join(ROOT, 'softhsm.conf'), sessionPoolSize: size, sessionQueueLimit: queue, sessionQueueMaxWaitMs: maxWaitMs }));
  return file;
}
