/**
 * `npm run bench`: HTTP throughput of the service next to the raw speed of the same
 * PKCS#11 calls on the same token, in one run, in one table.
 *
 * 1. Starts p11kms (strict SigV4: every request's signature is verified; audit trail at its
 *    default durability, fdatasync before each reply) on a fresh data directory.
 * 2. HTTP: autocannon replays SigV4-signed Encrypt, Decrypt, GenerateDataKey, Sign
 *    (RSA_2048 PKCS#1 v1.5 and ECC_NIST_P256 ECDSA) and GenerateMac (HMAC_256) requests
 *    over keep-alive connections at several concurrencies (the load generator shares the
 *    machine's cores with the service, as it would in CI), each run after an unmeasured
 *    second of the same requests (WARM_UP_SECONDS).
 * 3. The HTTP floor (http-floor.ts): the same Encrypt request bytes answered by bare Node HTTP
 *    processes doing no work, one at each concurrency and two at the highest; the service's
 *    rows are divided by it too (same processes and concurrency). Then the parts floor
 *    (parts-floor.ts): the same Encrypt served by p11kms's own SigV4 check, token call and audit
 *    record and nothing else; the service's Encrypt rows are divided by it.
 * 4. The same Encrypt, Decrypt and GenerateDataKey requests on one process and on --workers 2,
 *    both on PostgreSQL (a throwaway server on this machine, started by the bench).
 * 5. Raw: stops the services, then 1 and 2 processes open the same token through p11kms's own
 *    custody layer and HSM profile (the exact calls the service makes, no HTTP, no JSON, no
 *    SigV4, no audit), one call after another. HTTP rows are divided by the raw rate with the
 *    same number of threads: one process ÷ 1 thread.
 * 6. Store size: Encrypt (16 connections), CreateGrant (1 connection: one store commit after
 *    another) and ListKeys (1 connection: a read across every key) on data directories holding
 *    10 and --scale-keys key records (made as bench/scale.ts explains), and the start-up time
 *    (the median of three starts) with 10, --startup-keys and --scale-keys records, and how long
 *    the first Encrypt sent on listening waits.
 *
 * Options: --duration <s> per HTTP run (default 5), --connections 1,16,64,
 * --raw-seconds <s> per raw run (default 2), --scale-keys (default 100000, 0 skips),
 * --startup-keys (default 10000, 0 skips).
 */
import type { ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import autocannon from 'autocannon';
import { startHttpFloor } from './http-floor';
import { startPartsFloor } from './parts-floor';
import { rawRates } from './raw-threads';
import { freshDatabaseUrl } from '../test/support/postgres';
import { makeScaledDataDir } from './scale';
import { signedRequest, startService } from './service';

interface Row {
  operation: string;
  mode: string;
  /** Threads the token calls ran on: 1 for one service process or one raw thread. */
  threads: number;
  concurrency: number;
  opsPerSecond: number;
  p50ms: number;
  p99ms: number;
  errors?: number;
}

function parseArgs() {
  const args = process.argv.slice(2);
  const get = (name: string, fallback: string) => {
    const i = args.indexOf(`--${name}`);
    return i >= 0 && args[i + 1] ? args[i + 1] : fallback;
  };
  return {
    duration: Number(get('duration', '5')),
    connections: get('connections', '1,16,64').split(',').map(Number),
    rawSeconds: Number(get('raw-seconds', '2')),
    scaleKeys: Number(get('scale-keys', '100000')),
    startupKeys: Number(get('startup-keys', '10000')),
  };
}

function stopService(child: ChildProcess): Promise<void> {
  return new Promise<void>((resolve) => {
    if (child.exitCode !== null) return resolve();
    child.once('exit', () => resolve());
    child.kill('SIGTERM');
  });
}

async function call(endpoint: string, operation: string, body: unknown): Promise<Record<string, unknown>> {
  const req = await signedRequest(endpoint, operation, body);
  const res = await fetch(`${endpoint}/`, { method: 'POST', headers: req.headers, body: req.body });
  const json = (await res.json()) as Record<string, unknown>;
  if (res.status !== 200) throw new Error(`${operation}: ${JSON.stringify(json)}`);
  return json;
}

type SignedRequest = Awaited<ReturnType<typeof signedRequest>>;

/**
 * Unmeasured seconds of the same requests before each HTTP run: a fresh service's first
 * seconds are its JIT warming up, and the store-size row's first use of each of its 1,000 keys
 * (making its session copy) fell inside the timed run: a 5-s run measured 1,585/s with 10 keys
 * and 2,039/s with 100,000 where the next 5 s gave 2,459 and 2,537 (2026-12-02).
 */
const WARM_UP_SECONDS = 1;

async function httpRun(endpoint: string, name: string, request: SignedRequest | SignedRequest[], connections: number, duration: number): Promise<Row> {
  const requests = Array.isArray(request) ? request : [request];
  // Every request once (autocannon's connections each start at the first), then a second of load.
  if (requests.length > 1) for (const r of requests) await (await fetch(`${endpoint}${r.path}`, { method: r.method, headers: r.headers, body: r.body })).arrayBuffer();
  await autocannon({ url: endpoint, connections, pipelining: 1, duration: WARM_UP_SECONDS, requests });
  const result = await autocannon({
    url: endpoint,
    connections,
    pipelining: 1,
    duration,
    requests,
  });
  return {
    operation: name,
    mode: 'HTTP + SigV4, JSON store, 1 process',
    threads: 1,
    concurrency: connections,
    opsPerSecond: result.requests.average,
    p50ms: result.latency.p50,
    p99ms: result.latency.p99,
    errors: result.errors + result.non2xx,
  };
}

interface BenchKeys {
  symmetric: string;
  rsa: string;
  ec: string;
  hmac: string;
}

const STARTS = 3;

/**
 * Encrypt as the store grows: the same requests on data directories holding 10 and
 * `scaleKeys` keys (each request names another of up to 1,000 of them), a commit after another
 * (CreateGrant) and a read across every key (ListKeys) on each, and how long the service takes
 * to start with `startupKeys` keys (spawn to listening, the median of STARTS starts).
 */
async function scaleRuns(base: string, source: string, scaleKeys: number, startupKeys: number, duration: number): Promise<{ rows: Row[]; startups: string[] }> {
  const rows: Row[] = [];
  const startups: string[] = [];
  const sizes = [...new Set([10, startupKeys, scaleKeys].filter((n) => n > 0))].sort((a, b) => a - b);
  for (const count of sizes) {
    const dataDir = path.join(base, `data-${count}-keys`);
    process.stderr.write(`bench: data directory with ${count} keys\n`);
    let keyIds: string[];
    try {
      keyIds = makeScaledDataDir(source, dataDir, count);
    } catch (err) {
      startups.push(`store-size rows skipped: ${(err as Error).message}`);
      break;
    }
    // Three starts: one start-up swung by a third from run to run on the 2-core VM.
    const startupMs: number[] = [];
    for (let i = 0; i < STARTS - 1; i++) {
      const started = performance.now();
      const { child } = await startService(dataDir);
      startupMs.push(performance.now() - started);
      await stopService(child);
    }
    const started = performance.now();
    const { child, endpoint } = await startService(dataDir);
    startupMs.push(performance.now() - started);
    try {
      const context = { purpose: 'bench' };
      const plaintext = Buffer.alloc(32, 7).toString('base64');
      // What a client that starts the service and uses it at once waits for (a CI pipeline).
      const first = await signedRequest(endpoint, 'Encrypt', { KeyId: keyIds[0], Plaintext: plaintext, EncryptionContext: context });
      const firstSent = performance.now();
      const firstAnswer = await fetch(`${endpoint}/`, { method: 'POST', headers: first.headers, body: first.body });
      await firstAnswer.arrayBuffer();
      const firstMs = performance.now() - firstSent;
      if (firstAnswer.status !== 200) throw new Error(`the first Encrypt after start: HTTP ${firstAnswer.status}`);
      const median = [...startupMs].sort((a, b) => a - b)[Math.floor(startupMs.length / 2)];
      startups.push(
        `start-up with ${count.toLocaleString('en')} keys: ${Math.round(median)} ms, the median of ${startupMs.map(Math.round).join(', ')} (spawn to listening, node start-up included); the first Encrypt, sent on listening: ${Math.round(firstMs)} ms`,
      );
      if (count !== 10 && count !== scaleKeys) continue;
      const step = Math.max(1, Math.floor(keyIds.length / 1000));
      const requests: SignedRequest[] = [];
      for (let i = 0; i < keyIds.length && requests.length < 1000; i += step) {
        requests.push(await signedRequest(endpoint, 'Encrypt', { KeyId: keyIds[i], Plaintext: plaintext, EncryptionContext: context }));
      }
      process.stderr.write(`bench: HTTP Encrypt × 16 over ${requests.length} of ${count} keys for ${duration} s\n`);
      rows.push({ ...(await httpRun(endpoint, `Encrypt, ${count.toLocaleString('en')} keys in the store`, requests, 16, duration)) });
      // A commit's cost as the store grows: each CreateGrant (no Name) is a new grant, one commit.
      const grant = await signedRequest(endpoint, 'CreateGrant', { KeyId: keyIds[0], GranteePrincipal: 'arn:aws:iam::111122223333:root', Operations: ['Decrypt'] });
      process.stderr.write(`bench: HTTP CreateGrant × 1 with ${count} keys for ${duration} s\n`);
      rows.push({ ...(await httpRun(endpoint, `CreateGrant, ${count.toLocaleString('en')} keys in the store`, grant, 1, duration)) });
      // A read across every key: each ListKeys page lists the account's keys oldest first.
      const list = await signedRequest(endpoint, 'ListKeys', { Limit: 100 });
      process.stderr.write(`bench: HTTP ListKeys × 1 with ${count} keys for ${duration} s\n`);
      rows.push({ ...(await httpRun(endpoint, `ListKeys (Limit 100), ${count.toLocaleString('en')} keys in the store`, list, 1, duration)) });
    } finally {
      await stopService(child);
    }
  }
  return { rows, startups };
}

/**
 * The same Encrypt, Decrypt and GenerateDataKey requests (strict SigV4) against the two other
 * deployments: one process on PostgreSQL, and --workers 2 on PostgreSQL (the JSON-store
 * process is the main run above). A throwaway PostgreSQL server runs on this machine too.
 */
async function clusterRuns(base: string, connections: number, duration: number): Promise<Row[]> {
  const rows: Row[] = [];
  for (const [label, workers] of [
    ['PostgreSQL, 1 process', 1],
    ['PostgreSQL, --workers 2', 2],
  ] as const) {
    const dataDir = path.join(base, `data-pg-${workers}`);
    const { child, endpoint } = await startService(dataDir, { P11KMS_STORE_URL: await freshDatabaseUrl(), P11KMS_WORKERS: String(workers) }, workers);
    try {
      const keyId = ((await call(endpoint, 'CreateKey', {})) as { KeyMetadata: { KeyId: string } }).KeyMetadata.KeyId;
      const context = { purpose: 'bench' };
      const plaintext = Buffer.alloc(32, 7).toString('base64');
      const { CiphertextBlob } = (await call(endpoint, 'Encrypt', { KeyId: keyId, Plaintext: plaintext, EncryptionContext: context })) as { CiphertextBlob: string };
      const requests = {
        Encrypt: await signedRequest(endpoint, 'Encrypt', { KeyId: keyId, Plaintext: plaintext, EncryptionContext: context }),
        Decrypt: await signedRequest(endpoint, 'Decrypt', { CiphertextBlob, EncryptionContext: context }),
        GenerateDataKey: await signedRequest(endpoint, 'GenerateDataKey', { KeyId: keyId, KeySpec: 'AES_256', EncryptionContext: context }),
      };
      for (const [name, request] of Object.entries(requests)) {
        process.stderr.write(`bench: HTTP ${name} × ${connections} on ${label} for ${duration} s\n`);
        rows.push({ ...(await httpRun(endpoint, name, request, connections, duration)), mode: `HTTP + SigV4, ${label}`, threads: workers });
      }
    } finally {
      await stopService(child);
    }
  }
  return rows;
}

const FLOOR_OPERATION = "Encrypt's request, fixed answer";
const PARTS_OPERATION = 'Encrypt, required parts only';

/**
 * The floors, with the service's Encrypt request: the HTTP floor (http-floor.ts, the request's
 * bytes and a fixed answer) and the parts floor (parts-floor.ts, the same Encrypt through
 * p11kms's own SigV4 check, token call and audit record, nothing else); one process at each
 * concurrency, two processes at the highest, as the service's rows.
 */
async function floorRuns(base: string, dataDir: string, keyId: string, request: SignedRequest, answer: string, connections: number[], duration: number): Promise<Row[]> {
  const rows: Row[] = [];
  const runs = [...connections.map((c) => [1, c] as const), [2, Math.max(...connections)] as const];
  const floors = [
    { operation: FLOOR_OPERATION, mode: 'bare Node HTTP, no work', start: (processes: number) => startHttpFloor(processes, answer, path.join(base, 'floor-answer.json')) },
    { operation: PARTS_OPERATION, mode: 'HTTP + SigV4 + 1 token call + 1 audit record', start: (processes: number) => startPartsFloor(processes, dataDir, keyId, path.join(base, 'bench-credentials.json')) },
  ];
  for (const floor of floors) {
    for (const [processes, c] of runs) {
      const { child, endpoint } = await floor.start(processes);
      try {
        process.stderr.write(`bench: ${floor.operation} (${floor.mode}), ${processes} process(es) × ${c} for ${duration} s\n`);
        const row = await httpRun(endpoint, 'Encrypt', request, c, duration);
        rows.push({ ...row, operation: floor.operation, mode: `${floor.mode}, ${processes} process${processes > 1 ? 'es' : ''}`, threads: processes });
      } finally {
        await stopService(child);
      }
    }
  }
  return rows;
}

function printTable(rows: Row[], notes: string[]): void {
  const raw = new Map<string, number>();
  for (const r of rows.filter((r) => r.mode.startsWith('raw'))) raw.set(`${r.operation}/${r.threads}`, r.opsPerSecond);
  const rawOf = (r: Row) => raw.get(`${r.operation.replace(/, [\d,]+ keys in the store$/, '')}/${r.threads}`);
  const floorOf = (operation: string) => new Map(rows.filter((r) => r.operation === operation).map((r) => [`${r.threads}/${r.concurrency}`, r.opsPerSecond]));
  const floor = floorOf(FLOOR_OPERATION);
  const parts = floorOf(PARTS_OPERATION);
  const percent = (part: number, whole: number | undefined) => (whole ? `${((part / whole) * 100).toFixed(0)} %` : '');
  const lines = [
    '| operation | path | concurrency | ops/s | p50 ms | p99 ms | ÷ raw, same threads | ÷ HTTP floor, same processes and concurrency | ÷ parts floor, same processes and concurrency |',
    '|---|---|---:|---:|---:|---:|---:|---:|---:|',
  ];
  for (const r of rows) {
    const served = !r.mode.startsWith('raw') && r.operation !== FLOOR_OPERATION && r.operation !== PARTS_OPERATION;
    const errors = r.errors ? ` (${r.errors} errors)` : '';
    const at = `${r.threads}/${r.concurrency}`;
    // The parts floor makes Encrypt's calls; other operations make other ones.
    const ratios = served ? `${percent(r.opsPerSecond, rawOf(r))} | ${percent(r.opsPerSecond, floor.get(at))} | ${r.operation.startsWith('Encrypt') ? percent(r.opsPerSecond, parts.get(at)) : ''}` : ' |  | ';
    lines.push(`| ${r.operation} | ${r.mode} | ${r.concurrency} | ${Math.round(r.opsPerSecond)}${errors} | ${r.p50ms.toFixed(2)} | ${r.p99ms.toFixed(2)} | ${ratios} |`);
  }
  process.stdout.write(`\n${lines.join('\n')}\n\n${notes.map((n) => `${n}\n`).join('')}`);
  process.stdout.write(`machine: ${os.cpus().length} × ${os.cpus()[0]?.model ?? 'cpu'}, node ${process.version}; load generator on the same machine\n`);
}

async function main(): Promise<void> {
  const { duration, connections, rawSeconds, scaleKeys, startupKeys } = parseArgs();
  const base = fs.mkdtempSync(path.join(os.tmpdir(), 'p11kms-bench-'));
  const dataDir = path.join(base, 'data');
  const { child, endpoint } = await startService(dataDir);
  const rows: Row[] = [];
  let ids: BenchKeys;
  let encryptRequest: SignedRequest | undefined;
  let encryptAnswer: string | undefined;
  try {
    const create = async (body: unknown) => ((await call(endpoint, 'CreateKey', body)) as { KeyMetadata: { KeyId: string } }).KeyMetadata.KeyId;
    ids = {
      symmetric: await create({}),
      rsa: await create({ KeySpec: 'RSA_2048', KeyUsage: 'SIGN_VERIFY' }),
      ec: await create({ KeySpec: 'ECC_NIST_P256', KeyUsage: 'SIGN_VERIFY' }),
      hmac: await create({ KeySpec: 'HMAC_256', KeyUsage: 'GENERATE_VERIFY_MAC' }),
    };
    const keyId = ids.symmetric;
    const context = { purpose: 'bench' };
    const plaintext = Buffer.alloc(32, 7).toString('base64');
    const message64 = Buffer.from('benchmark message').toString('base64');
    const encrypted = await call(endpoint, 'Encrypt', { KeyId: keyId, Plaintext: plaintext, EncryptionContext: context });
    const { CiphertextBlob } = encrypted as { CiphertextBlob: string };
    encryptAnswer = JSON.stringify(encrypted);
    const requests = {
      Encrypt: await signedRequest(endpoint, 'Encrypt', { KeyId: keyId, Plaintext: plaintext, EncryptionContext: context }),
      Decrypt: await signedRequest(endpoint, 'Decrypt', { CiphertextBlob, EncryptionContext: context }),
      GenerateDataKey: await signedRequest(endpoint, 'GenerateDataKey', { KeyId: keyId, KeySpec: 'AES_256', EncryptionContext: context }),
      'Sign RSA_2048': await signedRequest(endpoint, 'Sign', { KeyId: ids.rsa, Message: message64, SigningAlgorithm: 'RSASSA_PKCS1_V1_5_SHA_256' }),
      'Sign ECC_NIST_P256': await signedRequest(endpoint, 'Sign', { KeyId: ids.ec, Message: message64, SigningAlgorithm: 'ECDSA_SHA_256' }),
      'GenerateMac HMAC_256': await signedRequest(endpoint, 'GenerateMac', { KeyId: ids.hmac, Message: message64, MacAlgorithm: 'HMAC_SHA_256' }),
    };
    encryptRequest = requests.Encrypt;
    for (const [name, request] of Object.entries(requests)) {
      for (const c of connections) {
        process.stderr.write(`bench: HTTP ${name} × ${c} for ${duration} s\n`);
        rows.push(await httpRun(endpoint, name, request, c, duration));
      }
    }
  } finally {
    await stopService(child);
  }
  rows.push(...(await floorRuns(base, dataDir, ids!.symmetric, encryptRequest!, encryptAnswer!, connections, duration)));
  rows.push(...(await clusterRuns(base, Math.max(...connections), duration)));
  for (const threads of [1, 2]) {
    process.stderr.write(`bench: raw PKCS#11 calls on the same token, ${threads} thread(s)\n`);
    for (const r of await rawRates(dataDir, ids!, threads, rawSeconds)) {
      rows.push({ ...r, mode: `raw PKCS#11, ${threads} thread${threads > 1 ? 's' : ''}`, concurrency: threads });
    }
  }
  const scale = scaleKeys > 0 || startupKeys > 0 ? await scaleRuns(base, dataDir, scaleKeys, startupKeys, duration) : { rows: [], startups: [] };
  rows.push(...scale.rows);
  printTable(rows, scale.startups);
  fs.rmSync(base, { recursive: true, force: true });
}

main().then(
  // The throwaway PostgreSQL server is stopped when this process exits.
  () => process.exit(0),
  (err: unknown) => {
    process.stderr.write(`bench failed: ${err instanceof Error ? err.stack : String(err)}\n`);
    process.exit(1);
  },
);
