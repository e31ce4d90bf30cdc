import { execFile } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { promisify } from 'node:util';

export type TrailRow = Record<string, any>;

export function trailFiles(dir: string): string[] {
  return fs.readdirSync(dir).filter((f) => /^trail-.*\.jsonl$/.test(f)).sort();
}

/** Every intact record of a trail directory, in file order (a torn last line is left out). */
export function readTrail(dir: string): TrailRow[] {
  return trailFiles(dir).flatMap((f) =>
    fs
      .readFileSync(path.join(dir, f), 'utf8')
      .split('\n')
      .filter((l) => l.startsWith('{') && l.endsWith('}'))
      .map((l) => JSON.parse(l) as TrailRow),
  );
}

const MAIN = path.resolve(__dirname, '..', '..', 'src', 'main.js');

/** `p11kms audit verify --dir <dir>` as an auditor runs it: exit code and report. */
export async function auditVerify(dir: string): Promise<{ code: number; stdout: string }> {
  try {
    return { code: 0, stdout: (await promisify(execFile)(process.execPath, [MAIN, 'audit', 'verify', '--dir', dir])).stdout };
  } catch (err) {
    const e = err as { code: number; stdout: string };
    return { code: e.code, stdout: e.stdout };
  }
}
