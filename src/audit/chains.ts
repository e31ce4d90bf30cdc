import * as fs from 'node:fs';
import * as path from 'node:path';
import { fingerprintOf, listPublicKeyFiles, listTrailFiles } from './format';
import { type VerifyReport, verifyTrail } from './verify';

/**
 * The hash chains under the given directories: a directory holding trail files is one chain;
 * so is each of its subdirectories that does (the service writes one per process when
 * several processes share a deployment: <auditDir>/<host>.<pid>/).
 */
export function findChains(dirs: readonly string[], options: { required?: boolean } = {}): string[] {
  const chains: string[] = [];
  for (const dir of dirs) {
    if (!fs.existsSync(dir)) throw new Error(`audit directory ${dir} does not exist`);
    if (listTrailFiles(dir).length > 0) chains.push(dir);
    for (const entry of fs.readdirSync(dir, { withFileTypes: true })) {
      const sub = path.join(dir, entry.name);
      if (entry.isDirectory() && listTrailFiles(sub).length > 0) chains.push(sub);
    }
  }
  if (chains.length === 0 && options.required !== false) throw new Error(`no audit trail files under ${dirs.join(', ')}`);
  return chains;
}

/**
 * The trust list for verifying chains: the key files given, else every
 * audit-signing-public-key*.pem of the chains and of their parent directories (each process
 * publishes the token's key versions beside its chain). `consistent` is false when two of
 * those files name the same key version with different keys (one was replaced).
 */
export function trustedKeysOf(chains: readonly string[], given: readonly string[] | undefined): { keys: string[]; consistent: boolean } {
  if (given) return { keys: given.map((f) => fs.readFileSync(f, 'utf8')), consistent: true };
  const dirs = [...new Set(chains.flatMap((c) => [c, path.dirname(c)]))];
  const keys = new Map<string, string>();
  const byVersion = new Map<string, Set<string>>();
  for (const dir of dirs) {
    for (const name of listPublicKeyFiles(dir)) {
      const pem = fs.readFileSync(path.join(dir, name), 'utf8');
      const fingerprint = fingerprintOf(pem);
      keys.set(fingerprint, pem);
      const version = /-v(\d+)\.pem$/.exec(name)?.[1];
      if (version) byVersion.set(version, (byVersion.get(version) ?? new Set()).add(fingerprint));
    }
  }
  return { keys: [...keys.values()], consistent: [...byVersion.values()].every((s) => s.size === 1) };
}

/**
 * Every chain under `dir` checked with the trusted keys, as one report (file names carry the
 * chain's directory when there are several): what the console's verify view shows.
 */
export function verifyChains(dir: string, trustedKeys: readonly string[]): VerifyReport {
  const chains = findChains([dir], { required: false });
  if (chains.length <= 1) return verifyTrail({ dir: chains[0] ?? dir, trustedKeys });
  const reports = chains.map((chain) => ({ name: path.relative(dir, chain), report: verifyTrail({ dir: chain, trustedKeys }) }));
  return {
    ok: reports.every((r) => r.report.ok),
    findings: reports.flatMap(({ name, report }) => report.findings.map((f) => (f.file ? { ...f, file: path.join(name, f.file) } : f))),
    files: reports.reduce((n, r) => n + r.report.files, 0),
    records: reports.reduce((n, r) => n + r.report.records, 0),
    digests: reports.reduce((n, r) => n + r.report.digests, 0),
  };
}
