import * as fs from 'node:fs';
import * as path from 'node:path';
import { listTrailFiles, PUBLIC_KEY_FILE } from './format';

/**
 * The hash chains under the given directories: a directory holding trail files is one chain;
 * so is each of its subdirectories that does (the service writes one per process when
 * several processes share a deployment: <auditDir>/<host>.<pid>/).
 */
export function findChains(dirs: readonly string[]): string[] {
  const chains: string[] = [];
  for (const dir of dirs) {
    if (!fs.existsSync(dir)) throw new Error(`audit directory ${dir} does not exist`);
    if (listTrailFiles(dir).length > 0) chains.push(dir);
    for (const entry of fs.readdirSync(dir, { withFileTypes: true })) {
      const sub = path.join(dir, entry.name);
      if (entry.isDirectory() && listTrailFiles(sub).length > 0) chains.push(sub);
    }
  }
  if (chains.length === 0) throw new Error(`no audit trail files under ${dirs.join(', ')}`);
  return chains;
}

/** The public key a chain is checked with: the one given, else the chain's own, else its parent's. */
export function publicKeyFileOf(chain: string, given: string | undefined): string {
  if (given) return given;
  const own = path.join(chain, PUBLIC_KEY_FILE);
  return fs.existsSync(own) ? own : path.join(path.dirname(chain), PUBLIC_KEY_FILE);
}
