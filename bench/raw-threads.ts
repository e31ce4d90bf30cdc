import { type ChildProcess, spawn } from 'node:child_process';
import * as path from 'node:path';
import { createInterface, type Interface } from 'node:readline';
import type { RawKeys } from './raw-child';

export const RAW_TASKS = ['Encrypt', 'Decrypt', 'GenerateDataKey', 'Sign RSA_2048', 'Sign ECC_NIST_P256', 'GenerateMac HMAC_256'] as const;

export interface RawRate {
  operation: string;
  threads: number;
  opsPerSecond: number;
  p50ms: number;
  p99ms: number;
}

interface Child {
  process: ChildProcess;
  lines: AsyncIterator<string>;
  input: Interface;
}

async function nextLine(child: Child): Promise<string> {
  const { value, done } = await child.lines.next();
  if (done) throw new Error('bench: a raw child exited early');
  return value;
}

/**
 * Raw token rates with `threads` threads: that many processes (each one thread doing one call
 * after another, as each --workers process does) open the same token, then run every task
 * together for `seconds`; their rates add up. Opening is one process at a time (SoftHSM2
 * 2.6.1 races when processes log in at once).
 */
export async function rawRates(dataDir: string, keys: RawKeys, threads: number, seconds: number): Promise<RawRate[]> {
  const children: Child[] = [];
  try {
    for (let i = 0; i < threads; i++) {
      const child = spawn(process.execPath, [path.join(__dirname, 'raw-child.js'), dataDir, JSON.stringify(keys)], { stdio: ['pipe', 'pipe', 'inherit'] });
      const input = createInterface({ input: child.stdout! });
      const entry = { process: child, lines: input[Symbol.asyncIterator](), input };
      children.push(entry);
      if ((await nextLine(entry)) !== 'ready') throw new Error('bench: raw child did not start');
    }
    const rates: RawRate[] = [];
    for (const task of RAW_TASKS) {
      for (const c of children) c.process.stdin!.write(`run\t${task}\t${seconds}\n`);
      const results = await Promise.all(children.map(async (c) => JSON.parse(await nextLine(c)) as { ops: number; seconds: number; p50ms: number; p99ms: number }));
      rates.push({
        operation: task,
        threads,
        opsPerSecond: results.reduce((sum, r) => sum + r.ops / r.seconds, 0),
        p50ms: Math.max(...results.map((r) => r.p50ms)),
        p99ms: Math.max(...results.map((r) => r.p99ms)),
      });
    }
    return rates;
  } finally {
    await Promise.all(
      children.map(
        (c) =>
          new Promise<void>((resolve) => {
            if (c.process.exitCode !== null) return resolve();
            c.process.once('exit', () => resolve());
            c.process.stdin!.end('exit\n');
          }),
      ),
    );
  }
}
