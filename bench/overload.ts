/**
 * Throttling run (not a test): a service with a small token session pool (2 sessions) is driven
 * with SigV4-signed Sign RSA_2048 requests (token-bound) from many connections: with the default
 * load shedding (by queueing time: sessionQueueMaxWaitMs, default 1000), with shedding by count
 * alone (sessionQueueLimit --queue, default 8, no time limit: what versions before did), and
 * without shedding. Prints offered rate, admitted rate, p50/p99 of admitted requests, throttled
 * and other errors.
 *
 *   npx tsc -p tsconfig.json && node dist/bench/overload.js [--connections 256] [--duration 15] [--rate 800] [--queue 8] [--max-wait 1000]
 * Without --rate every connection sends its next request as soon as the previous is answered
 * (a retry storm: no back-off after ThrottlingException); with it the offered rate is fixed.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import autocannon from 'autocannon';
import { signedRequest as signed, startService } from './service';

const ROOT = path.resolve(__dirname, '..', '..');

function option(name: string, fallback: number): number {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? Number(process.argv[i + 1]) : fallback;
}

function percentile(sorted: number[], p: number): number {
  return sorted.length === 0 ? NaN : sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))];
}

interface Shedding {
  sessionQueueLimit: number;
  sessionQueueMaxWaitMs: number;
}

async function run(label: string, poolSize: number, shedding: Shedding, connections: number, duration: number, rate?: number): Promise<void> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'p11kms-overload-'));
  // A profile like the default one with a small session pool and the given shedding limits.
  const base = JSON.parse(fs.readFileSync(path.join(ROOT, 'native-config', 'softhsm2.json'), 'utf8')) as Record<string, unknown>;
  const profile = path.join(dir, 'profile.json');
  fs.writeFileSync(profile, JSON.stringify({ ...base, softhsm2ConfTemplate: path.join(ROOT, 'softhsm.conf'), sessionPoolSize: poolSize, ...shedding }));
  fs.mkdirSync(path.join(dir, 'data'));
  const { child, endpoint } = await startService(path.join(dir, 'data'), { P11KMS_HSM_PROFILE: profile, P11KMS_LOG_LEVEL: 'error' });
  try {
    const create = await signed(endpoint, 'CreateKey', { KeySpec: 'RSA_2048', KeyUsage: 'SIGN_VERIFY' });
    const created = (await (await fetch(`${endpoint}/`, { method: 'POST', headers: create.headers, body: create.body })).json()) as { KeyMetadata: { KeyId: string } };
    const request = await signed(endpoint, 'Sign', { KeyId: created.KeyMetadata.KeyId, Message: Buffer.from('overload').toString('base64'), SigningAlgorithm: 'RSASSA_PSS_SHA_256' });
    const latencies = new Map<number, number[]>();
    const result = await autocannon({
      url: endpoint,
      connections,
      duration,
      // Open loop: a fixed offered rate, as independent clients would send; closed loop otherwise.
      ...(rate ? { overallRate: rate } : {}),
      requests: [request],
      setupClient(client) {
        client.on('response', (status: number, _bytes: number, ms: number) => {
          let list = latencies.get(status);
          if (!list) latencies.set(status, (list = []));
          list.push(ms);
        });
      },
    });
    const ok = (latencies.get(200) ?? []).sort((a, b) => a - b);
    const throttled = (latencies.get(400) ?? []).sort((a, b) => a - b);
    const other = [...latencies.entries()].filter(([s]) => s !== 200 && s !== 400).reduce((n, [, l]) => n + l.length, 0);
    const total = [...latencies.values()].reduce((n, l) => n + l.length, 0);
    console.log(
      [
        label,
        `pool ${poolSize}, queue limit ${shedding.sessionQueueLimit}, max wait ${shedding.sessionQueueMaxWaitMs} ms, ${connections} connections${rate ? `, offered at ${rate}/s` : ' (closed loop)'}, ${duration} s`,
        `offered ${(total / duration).toFixed(0)}/s`,
        `admitted ${(ok.length / duration).toFixed(0)}/s`,
        `admitted p50 ${percentile(ok, 50).toFixed(1)} ms, p99 ${percentile(ok, 99).toFixed(1)} ms`,
        `throttled ${throttled.length} (p99 ${percentile(throttled, 99).toFixed(1)} ms)`,
        `other statuses ${other}, socket errors ${result.errors}, timeouts ${result.timeouts}`,
      ].join(' | '),
    );
    const metrics = await (await fetch(`${endpoint}/metrics`)).text();
    console.log(`  service: ${metrics.split('\n').filter((l) => /^p11kms_(token_shed_total|requests_total\{.*Sign)/.test(l)).join('; ')}`);
  } finally {
    child.kill('SIGTERM');
    await new Promise((r) => child.once('exit', r));
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

async function main(): Promise<void> {
  const connections = option('connections', 256);
  const duration = option('duration', 15);
  const rate = option('rate', 0) || undefined;
  const queue = option('queue', 8);
  const maxWait = option('max-wait', 1000);
  const unbounded = 100_000_000;
  await run('capacity', 2, { sessionQueueLimit: unbounded, sessionQueueMaxWaitMs: unbounded }, 2, duration);
  await run('overload, shedding by queueing time', 2, { sessionQueueLimit: 1024, sessionQueueMaxWaitMs: maxWait }, connections, duration, rate);
  await run('overload, shedding by count alone', 2, { sessionQueueLimit: queue, sessionQueueMaxWaitMs: unbounded }, connections, duration, rate);
  await run('overload, no shedding', 2, { sessionQueueLimit: unbounded, sessionQueueMaxWaitMs: unbounded }, connections, duration, rate);
}

void main();
