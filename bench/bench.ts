/**
 * `npm run bench`: HTTP throughput of the service next to the raw speed of the same
 * PKCS#11 calls on the same token, in one run.
 *
 * 1. Starts p11kms (strict SigV4: every request's signature is verified) on a fresh data
 *    directory and creates one key.
 * 2. HTTP: autocannon replays SigV4-signed Encrypt, Decrypt, GenerateDataKey, Sign
 *    (RSA_2048 PKCS#1 v1.5 and ECC_NIST_P256 ECDSA) and GenerateMac (HMAC_256) requests
 *    over keep-alive connections at several concurrencies (the load generator shares the
 *    machine's cores with the service, as it would in CI).
 * 3. Raw: stops the service, opens the same token in this process through p11kms's own
 *    custody layer (the exact calls the service makes, no HTTP, no JSON, no SigV4) and
 *    measures them with tinybench, sequentially and 8 at a time.
 *
 * Options: --duration <s> per HTTP run (default 5), --connections 1,16,64.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import autocannon from 'autocannon';
import pino from 'pino';
import { Bench } from 'tinybench';
import { loadConfig, loadHsmProfile } from '../src/config/config';
import { KeyCustody, type MaterialRef } from '../src/custody/key-custody';
import { Token } from '../src/custody/token';
import { additionalData, encodeHeader, PayloadKind } from '../src/operations/shared/ciphertext';
import { freshDatabaseUrl } from '../test/support/postgres';
import { signedRequest, startService } from './service';

interface Row {
  operation: string;
  mode: string;
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
  };
}

async function call(endpoint: string, operation: string, body: unknown): Promise<Record<string, unknown>> {
  const req = await signedRequest(endpoint, operation, body);
  const res = await fetch(`${endpoint}/`, { method: 'POST', headers: req.headers, body: req.body });
  const json = (await res.json()) as Record<string, unknown>;
  if (res.status !== 200) throw new Error(`${operation}: ${JSON.stringify(json)}`);
  return json;
}

async function httpRun(endpoint: string, name: string, request: Awaited<ReturnType<typeof signedRequest>>, connections: number, duration: number): Promise<Row> {
  const result = await autocannon({
    url: endpoint,
    connections,
    pipelining: 1,
    duration,
    requests: [request],
  });
  return {
    operation: name,
    mode: 'HTTP + SigV4, JSON store, 1 process',
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

async function rawRuns(dataDir: string, ids: BenchKeys): Promise<Row[]> {
  const keyId = ids.symmetric;
  const config = loadConfig({ env: { P11KMS_DATA_DIR: dataDir } });
  const token = Token.open(loadHsmProfile(config), dataDir, pino({ level: 'warn' }));
  const custody = new KeyCustody(token);
  const material: MaterialRef = { keyId, version: 1 };
  const header = encodeHeader({ kind: PayloadKind.Plaintext, keyId, materialVersion: 1, secretLength: 0 });
  const aad = additionalData(header, { purpose: 'bench' });
  const plaintext = Buffer.alloc(32, 7);
  const { iv, sealed } = await custody.encrypt(material, aad, plaintext);
  const message = Buffer.from('benchmark message');
  const tasks: Record<string, () => Promise<unknown>> = {
    Encrypt: () => custody.encrypt(material, aad, plaintext),
    Decrypt: () => custody.decrypt(material, iv, aad, sealed),
    GenerateDataKey: async () => custody.encrypt(material, aad, await custody.random(32)),
    'Sign RSA_2048': () => custody.sign({ keyId: ids.rsa, version: 1 }, 'RSA_2048', 'RSASSA_PKCS1_V1_5_SHA_256', 'RAW', message),
    'Sign ECC_NIST_P256': () => custody.sign({ keyId: ids.ec, version: 1 }, 'ECC_NIST_P256', 'ECDSA_SHA_256', 'RAW', message),
    'GenerateMac HMAC_256': () => custody.mac({ keyId: ids.hmac, version: 1 }, 'HMAC_256', message),
  };
  const rows: Row[] = [];
  try {
    for (const concurrency of [1, 8]) {
      for (const [name, fn] of Object.entries(tasks)) {
        const bench = new Bench(concurrency === 1 ? { time: 2000 } : { time: 2000, concurrency: 'task', threshold: concurrency });
        bench.add(name, fn);
        const started = performance.now();
        await bench.run();
        const elapsed = (performance.now() - started) / 1000;
        const result = bench.tasks[0].result as { state: string; latency?: { p50: number; p99: number; samplesCount: number }; throughput?: { mean: number } };
        if (!result.latency) throw new Error(`raw ${name} did not complete (${result.state})`);
        rows.push({
          operation: name,
          mode: 'raw PKCS#11',
          concurrency,
          // Sequential: the estimator's mean; concurrent: completed calls over wall time.
          opsPerSecond: concurrency === 1 ? result.throughput!.mean : result.latency.samplesCount / elapsed,
          p50ms: result.latency.p50,
          p99ms: result.latency.p99,
        });
      }
    }
  } finally {
    token.close();
  }
  return rows;
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
        rows.push({ ...(await httpRun(endpoint, name, request, connections, duration)), mode: `HTTP + SigV4, ${label}` });
      }
    } finally {
      await new Promise<void>((resolve) => {
        child.once('exit', () => resolve());
        child.kill('SIGTERM');
      });
    }
  }
  return rows;
}

function printTable(rows: Row[]): void {
  const rawBest = new Map<string, number>();
  for (const r of rows.filter((r) => r.mode === 'raw PKCS#11')) rawBest.set(r.operation, Math.max(rawBest.get(r.operation) ?? 0, r.opsPerSecond));
  const lines = [
    '| operation | path | concurrency | ops/s | p50 ms | p99 ms | HTTP ÷ best raw |',
    '|---|---|---:|---:|---:|---:|---:|',
  ];
  for (const r of rows) {
    const ratio = r.mode === 'raw PKCS#11' ? '' : `${((r.opsPerSecond / rawBest.get(r.operation)!) * 100).toFixed(0)} %`;
    const errors = r.errors ? ` (${r.errors} errors)` : '';
    lines.push(`| ${r.operation} | ${r.mode} | ${r.concurrency} | ${Math.round(r.opsPerSecond)}${errors} | ${r.p50ms.toFixed(2)} | ${r.p99ms.toFixed(2)} | ${ratio} |`);
  }
  process.stdout.write(`\n${lines.join('\n')}\n\n`);
  process.stdout.write(`machine: ${os.cpus().length} × ${os.cpus()[0]?.model ?? 'cpu'}, node ${process.version}; load generator on the same machine\n`);
}

async function main(): Promise<void> {
  const { duration, connections } = parseArgs();
  const base = fs.mkdtempSync(path.join(os.tmpdir(), 'p11kms-bench-'));
  const dataDir = path.join(base, 'data');
  const { child, endpoint } = await startService(dataDir);
  const rows: Row[] = [];
  let ids: BenchKeys;
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
    const { CiphertextBlob } = (await call(endpoint, 'Encrypt', { KeyId: keyId, Plaintext: plaintext, EncryptionContext: context })) as { CiphertextBlob: string };
    const requests = {
      Encrypt: await signedRequest(endpoint, 'Encrypt', { KeyId: keyId, Plaintext: plaintext, EncryptionContext: context }),
      Decrypt: await signedRequest(endpoint, 'Decrypt', { CiphertextBlob, EncryptionContext: context }),
      GenerateDataKey: await signedRequest(endpoint, 'GenerateDataKey', { KeyId: keyId, KeySpec: 'AES_256', EncryptionContext: context }),
      'Sign RSA_2048': await signedRequest(endpoint, 'Sign', { KeyId: ids.rsa, Message: message64, SigningAlgorithm: 'RSASSA_PKCS1_V1_5_SHA_256' }),
      'Sign ECC_NIST_P256': await signedRequest(endpoint, 'Sign', { KeyId: ids.ec, Message: message64, SigningAlgorithm: 'ECDSA_SHA_256' }),
      'GenerateMac HMAC_256': await signedRequest(endpoint, 'GenerateMac', { KeyId: ids.hmac, Message: message64, MacAlgorithm: 'HMAC_SHA_256' }),
    };
    for (const [name, request] of Object.entries(requests)) {
      for (const c of connections) {
        process.stderr.write(`bench: HTTP ${name} × ${c} for ${duration} s\n`);
        rows.push(await httpRun(endpoint, name, request, c, duration));
      }
    }
  } finally {
    await new Promise<void>((resolve) => {
      child.once('exit', () => resolve());
      child.kill('SIGTERM');
    });
  }
  rows.push(...(await clusterRuns(base, Math.max(...connections), duration)));
  process.stderr.write('bench: raw PKCS#11 calls on the same token\n');
  rows.push(...(await rawRuns(dataDir, ids!)));
  printTable(rows);
  fs.rmSync(base, { recursive: true, force: true });
}

main().catch((err: unknown) => {
  process.stderr.write(`bench failed: ${err instanceof Error ? err.stack : String(err)}\n`);
  process.exit(1);
});
