/**
 * One thread of `npm run bench`'s raw token rates: a separate process (as each --workers
 * process is) that opens the token through p11kms's own custody layer and HSM profile and
 * runs one kind of call back to back, nothing else: no HTTP, no JSON, no SigV4, no audit, and
 * no crypto threads (profile `cryptoThreads`): each call where a lone caller is fastest.
 *
 * Protocol on stdio: prints `ready` once the token is open; then for every `run <task>
 * <seconds>` line prints one JSON line {task, ops, seconds, p50ms, p99ms}; `exit` closes.
 */
import { createInterface } from 'node:readline';
import pino from 'pino';
import { loadConfig, loadHsmProfile } from '../src/config/config';
import { KeyCustody, type MaterialRef } from '../src/custody/key-custody';
import { Token } from '../src/custody/token';
import { additionalData, encodeHeader, PayloadKind } from '../src/operations/shared/ciphertext';
import { readStoreFiles } from '../src/store/json/store-files';

export interface RawKeys {
  symmetric: string;
  rsa: string;
  ec: string;
  hmac: string;
}

/** The current material of a key as the service recorded it (creation id included). */
export function materialOf(dataDir: string, keyId: string): MaterialRef {
  const key = [...readStoreFiles(dataDir).snapshot.keys.values()].find((k) => k.keyId === keyId);
  if (!key) throw new Error(`bench: key ${keyId} is not in ${dataDir}`);
  const { materials, currentVersion } = key;
  const current = materials.find((m) => m.version === currentVersion)!;
  return { ...current, keyId, version: currentVersion } as MaterialRef;
}

async function main(): Promise<void> {
  const [dataDir, keysJson] = process.argv.slice(2);
  const ids = JSON.parse(keysJson) as RawKeys;
  const config = loadConfig({ env: { P11KMS_DATA_DIR: dataDir } });
  // The token's own speed: C_xInit and C_x on this thread and the pool, not through the crypto
  // threads' message round trip, which would slow a lone caller and flatter the service's ratio.
  const profile = { ...loadHsmProfile(config), cryptoThreads: 0 };
  const token = Token.open(profile, dataDir, pino({ level: 'warn' }));
  const custody = new KeyCustody(token);
  const material = materialOf(dataDir, ids.symmetric);
  const header = encodeHeader({ kind: PayloadKind.Plaintext, keyId: ids.symmetric, materialVersion: material.version, secretLength: 0 });
  const aad = additionalData(header, { purpose: 'bench' });
  const plaintext = Buffer.alloc(32, 7);
  const { iv, sealed } = await custody.symmetric.encrypt(material, aad, plaintext);
  const message = Buffer.from('benchmark message');
  const rsa = materialOf(dataDir, ids.rsa);
  const ec = materialOf(dataDir, ids.ec);
  const hmac = materialOf(dataDir, ids.hmac);
  // The calls each operation makes in the service.
  const tasks: Record<string, () => Promise<unknown>> = {
    Encrypt: () => custody.symmetric.encrypt(material, aad, plaintext),
    Decrypt: () => custody.symmetric.decrypt(material, iv, aad, sealed),
    GenerateDataKey: async () => custody.symmetric.encrypt(material, aad, await custody.random(32)),
    'Sign RSA_2048': () => custody.signatures.sign(rsa, 'RSA_2048', 'RSASSA_PKCS1_V1_5_SHA_256', 'RAW', message),
    'Sign ECC_NIST_P256': () => custody.signatures.sign(ec, 'ECC_NIST_P256', 'ECDSA_SHA_256', 'RAW', message),
    'GenerateMac HMAC_256': () => custody.signatures.mac(hmac, 'HMAC_256', message),
  };
  process.stdout.write('ready\n');
  for await (const line of createInterface({ input: process.stdin })) {
    const [command, task, seconds] = line.trim().split('\t');
    if (command === 'exit') break;
    const fn = tasks[task];
    if (!fn) throw new Error(`bench: unknown raw task ${task}`);
    for (let i = 0; i < 50; i++) await fn();
    const latencies: number[] = [];
    const started = performance.now();
    const until = started + Number(seconds) * 1000;
    for (let t = started; t < until; ) {
      await fn();
      const now = performance.now();
      latencies.push(now - t);
      t = now;
    }
    const elapsed = (performance.now() - started) / 1000;
    latencies.sort((a, b) => a - b);
    const at = (q: number) => latencies[Math.min(latencies.length - 1, Math.floor(q * latencies.length))];
    process.stdout.write(`${JSON.stringify({ task, ops: latencies.length, seconds: elapsed, p50ms: at(0.5), p99ms: at(0.99) })}\n`);
  }
  token.close();
}

if (require.main === module) {
  main().catch((err: unknown) => {
    process.stderr.write(`bench raw child failed: ${err instanceof Error ? err.stack : String(err)}\n`);
    process.exit(1);
  });
}
