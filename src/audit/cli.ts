import * as fs from 'node:fs';
import * as path from 'node:path';
import { type Command, InvalidArgumentError } from 'commander';
import { findChains, trustedKeysOf } from './chains';
import { listPublicKeyFiles, publicKeyFileOf } from './format';
import { ROTATE_KEY_REQUEST_FILE } from './key-rotation';
import { formatRow, parseErrorFilter, parseTime, queryChains } from './query';
import { formatFinding, type VerifyReport, verifyTrail } from './verify';

/**
 * `p11kms audit verify|query`: read-only, work on a copied trail directory on any machine,
 * and never touch the token (verify needs only the public key).
 */
export function registerAuditCommands(program: Command): void {
  const audit = program.command('audit').description('verify and query the audit trail (docs/audit.md)');

  audit
    .command('verify')
    .description('check the hash chain and the digest signatures with only the public key; exit 1 on any damage')
    .requiredOption('--dir <dirs...>', 'audit trail directories (the service writes <dataDir>/audit); every chain in them and in their subdirectories is checked')
    .option('--public-key <files...>', 'trusted signing public keys (PEM), one per key version; default every audit-signing-public-key*.pem of the chains and their parent directory')
    .option('--from <time>', 'only files that cover this time or later (ISO 8601, or 30m/12h/7d ago)')
    .option('--to <time>', 'only files that cover this time or earlier')
    .option('--anchor <digests...>', "digests an earlier run reported as latest ('[chain dir/]digest-….json:<sha256>'): each must still be there, unchanged")
    .option('--json', 'print the report as JSON')
    .action((opts: { dir: string[]; publicKey?: string[]; anchor?: string[]; from?: string; to?: string; json?: boolean }) => {
      const chains = findChains(opts.dir);
      const trust = trustedKeysOf(chains, opts.publicKey);
      let anchors: ReturnType<typeof anchorsOf>;
      try {
        anchors = anchorsOf(opts.anchor ?? [], chains, opts.dir[0]);
      } catch (err) {
        process.stderr.write(`p11kms: ${(err as Error).message}\n`);
        process.exitCode = 1;
        return;
      }
      const reports: Array<{ chain: string; report: VerifyReport }> = chains.map((chain) => {
        return {
          chain,
          report: verifyTrail({
            dir: chain,
            trustedKeys: trust.keys,
            ...(opts.from ? { from: parseTime(opts.from) } : {}),
            ...(opts.to ? { to: parseTime(opts.to) } : {}),
            anchors: anchors.get(chain) ?? [],
          }),
        };
      });
      // Every process signs with the token's keys: chains that disagree on a key version were tampered with.
      const oneKey = trust.consistent;
      const ok = oneKey && reports.every((r) => r.report.ok);
      if (opts.json) {
        process.stdout.write(`${JSON.stringify(chains.length === 1 ? reports[0].report : { ok, sameSigningKey: oneKey, chains: reports }, null, 2)}\n`);
      } else {
        if (!oneKey) process.stdout.write('error: the chains carry different signing public keys for the same key version; give the deployment\'s keys with --public-key\n');
        for (const { chain, report } of reports) {
          const prefix = chains.length > 1 ? `${chain}: ` : '';
          for (const f of report.findings) process.stdout.write(`${prefix}${formatFinding(f)}\n`);
          const problems = report.findings.filter((f) => f.severity === 'error').length;
          process.stdout.write(
            `${prefix}${report.ok ? 'OK' : 'FAILED'}: ${report.files} file(s), ${report.records} record(s), ${report.digests} digest(s)${problems ? `, ${problems} problem(s)` : ''}\n`,
          );
          // Kept outside the directory, this proves next time that nothing up to here was removed.
          if (report.latestDigest) process.stdout.write(`${prefix}latest signed digest (for --anchor): ${path.join(path.relative(opts.dir[0], chain), report.latestDigest.name)}:${report.latestDigest.sha256}\n`);
        }
        if (chains.length > 1) process.stdout.write(`${ok ? 'OK' : 'FAILED'}: ${chains.length} chains\n`);
      }
      process.exitCode = ok ? 0 : 1;
    });

  audit
    .command('rotate-key')
    .description('make the running service sign with a new signing key version (the old private key is destroyed in the token)')
    .requiredOption('--dir <dir>', "audit trail directory of the running service (with several processes, any one process's directory: the others follow)")
    .option('--timeout <seconds>', 'how long to wait for the service', '60')
    .action(async (opts: { dir: string; timeout: string }) => {
      const request = path.join(opts.dir, ROTATE_KEY_REQUEST_FILE);
      const before = new Set(listPublicKeyFiles(opts.dir));
      fs.writeFileSync(request, `${new Date().toISOString()}\n`);
      const deadline = Date.now() + Number(opts.timeout) * 1000;
      // The service removes the request once the new version has signed its first digest.
      while (fs.existsSync(request) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 200));
      if (fs.existsSync(request)) {
        fs.rmSync(request, { force: true });
        process.stderr.write(`p11kms: no service rotated the key within ${opts.timeout} s; is p11kms running with audit directory ${opts.dir}?\n`);
        process.exitCode = 1;
        return;
      }
      const added = listPublicKeyFiles(opts.dir).filter((n) => !before.has(n));
      const version = added.map((n) => /-v(\d+)\.pem$/.exec(n)?.[1]).find(Boolean);
      process.stdout.write(`audit signing key rotated${version ? `: version ${version}, public key ${path.join(opts.dir, publicKeyFileOf(Number(version)))}` : ''}\n`);
    });

  audit
    .command('query')
    .description('print matching records, oldest first (e.g. who decrypted with key X last week)')
    .requiredOption('--dir <dirs...>', 'audit trail directories (every chain in them and their subdirectories, merged in time order)')
    .option('--key <key>', 'key id or key ARN')
    .option('--principal <who>', 'principal ARN, access key id or account id')
    .option('--event <name>', 'event name, e.g. Decrypt')
    .option('--error [code]', 'only failed calls (alone or true), only calls that succeeded (false), or only this error code', errorFilterArgument)
    .option('--from <time>', 'ISO 8601, or 30m/12h/7d ago')
    .option('--to <time>', 'ISO 8601, or 30m/12h/7d ago')
    .option('--json', 'print whole records as JSON Lines instead of a table')
    .action((opts: { dir: string[]; key?: string; principal?: string; event?: string; error?: boolean | string; from?: string; to?: string; json?: boolean }) => {
      const records = queryChains(findChains(opts.dir), {
        ...(opts.key ? { key: opts.key } : {}),
        ...(opts.principal ? { principal: opts.principal } : {}),
        ...(opts.event ? { eventName: opts.event } : {}),
        ...(opts.error !== undefined ? { error: opts.error } : {}),
        ...(opts.from ? { from: parseTime(opts.from) } : {}),
        ...(opts.to ? { to: parseTime(opts.to) } : {}),
      });
      if (!opts.json) process.stdout.write('eventTime\teventName\tprincipal\tsourceIPAddress\tkeys\tresult\trequestID\n');
      for (const r of records) process.stdout.write(`${opts.json ? JSON.stringify(r) : formatRow(r)}\n`);
    });
}

/** `--error <value>` as parseErrorFilter reads it; a refusal is commander's usage error, not a stack trace. */
function errorFilterArgument(value: string): boolean | string {
  try {
    return parseErrorFilter(value);
  } catch (err) {
    throw new InvalidArgumentError((err as Error).message);
  }
}

/**
 * `--anchor` values by chain: `[chain dir/]digest-….json:<sha256>`, the chain dir relative to
 * the first --dir, as verify prints it. An anchor naming no chain found is refused.
 */
function anchorsOf(specs: readonly string[], chains: readonly string[], root: string): Map<string, Array<{ name: string; sha256: string }>> {
  const byChain = new Map<string, Array<{ name: string; sha256: string }>>();
  for (const spec of specs) {
    const m = /^(?:(.+)\/)?(digest-[^/]+\.json):([0-9a-fA-F]{64})$/.exec(spec);
    if (!m) throw new Error(`--anchor ${spec}: expected [chain dir/]digest-….json:<sha256>, as verify prints it`);
    const chain = chains.find((c) => path.relative(root, c) === (m[1] ?? ''));
    if (!chain) throw new Error(`--anchor ${spec}: no audit chain ${m[1] ?? root} under ${root}`);
    byChain.set(chain, [...(byChain.get(chain) ?? []), { name: m[2], sha256: m[3] }]);
  }
  return byChain;
}
