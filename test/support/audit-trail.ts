import * as fs from 'node:fs';
import * as path from 'node:path';

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
