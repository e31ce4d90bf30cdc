import * as fs from 'node:fs';
import type { Command } from 'commander';
import { findChains, publicKeyFileOf } from './chains';
import { PUBLIC_KEY_FILE } from './format';
import { formatRow, parseTime, queryChains } from './query';
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
    .option('--public-key <file>', `signing public key (PEM); default <chain>/${PUBLIC_KEY_FILE}`)
    .option('--from <time>', 'only files that cover this time or later (ISO 8601, or 30m/12h/7d ago)')
    .option('--to <time>', 'only files that cover this time or earlier')
    .option('--json', 'print the report as JSON')
    .action((opts: { dir: string[]; publicKey?: string; from?: string; to?: string; json?: boolean }) => {
      const chains = findChains(opts.dir);
      const keys = new Set<string>();
      const reports: Array<{ chain: string; report: VerifyReport }> = chains.map((chain) => {
        const publicKeyPem = fs.readFileSync(publicKeyFileOf(chain, opts.publicKey), 'utf8');
        keys.add(publicKeyPem.trim());
        return {
          chain,
          report: verifyTrail({
            dir: chain,
            publicKeyPem,
            ...(opts.from ? { from: parseTime(opts.from) } : {}),
            ...(opts.to ? { to: parseTime(opts.to) } : {}),
          }),
        };
      });
      // Every process signs with the one key in the token: chains claiming different keys were tampered with.
      const oneKey = keys.size === 1;
      const ok = oneKey && reports.every((r) => r.report.ok);
      if (opts.json) {
        process.stdout.write(`${JSON.stringify(chains.length === 1 ? reports[0].report : { ok, sameSigningKey: oneKey, chains: reports }, null, 2)}\n`);
      } else {
        if (!oneKey) process.stdout.write('error: the chains carry different signing public keys; give the deployment\'s key with --public-key\n');
        for (const { chain, report } of reports) {
          const prefix = chains.length > 1 ? `${chain}: ` : '';
          for (const f of report.findings) process.stdout.write(`${prefix}${formatFinding(f)}\n`);
          const problems = report.findings.filter((f) => f.severity === 'error').length;
          process.stdout.write(
            `${prefix}${report.ok ? 'OK' : 'FAILED'}: ${report.files} file(s), ${report.records} record(s), ${report.digests} digest(s)${problems ? `, ${problems} problem(s)` : ''}\n`,
          );
        }
        if (chains.length > 1) process.stdout.write(`${ok ? 'OK' : 'FAILED'}: ${chains.length} chains\n`);
      }
      process.exitCode = ok ? 0 : 1;
    });

  audit
    .command('query')
    .description('print matching records, oldest first (e.g. who decrypted with key X last week)')
    .requiredOption('--dir <dirs...>', 'audit trail directories (every chain in them and their subdirectories, merged in time order)')
    .option('--key <key>', 'key id or key ARN')
    .option('--principal <who>', 'principal ARN, access key id or account id')
    .option('--event <name>', 'event name, e.g. Decrypt')
    .option('--error [code]', 'only failed calls, or only this error code')
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
