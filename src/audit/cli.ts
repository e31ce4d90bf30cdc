import * as fs from 'node:fs';
import * as path from 'node:path';
import type { Command } from 'commander';
import { PUBLIC_KEY_FILE } from './format';
import { formatRow, parseTime, queryTrail } from './query';
import { formatFinding, verifyTrail } from './verify';

/**
 * `p11kms audit verify|query`: read-only, work on a copied trail directory on any machine,
 * and never touch the token (verify needs only the public key).
 */
export function registerAuditCommands(program: Command): void {
  const audit = program.command('audit').description('verify and query the audit trail (docs/audit.md)');

  audit
    .command('verify')
    .description('check the hash chain and the digest signatures with only the public key; exit 1 on any damage')
    .requiredOption('--dir <dir>', 'audit trail directory (the service writes <dataDir>/audit)')
    .option('--public-key <file>', `signing public key (PEM); default <dir>/${PUBLIC_KEY_FILE}`)
    .option('--from <time>', 'only files that cover this time or later (ISO 8601, or 30m/12h/7d ago)')
    .option('--to <time>', 'only files that cover this time or earlier')
    .option('--json', 'print the report as JSON')
    .action((opts: { dir: string; publicKey?: string; from?: string; to?: string; json?: boolean }) => {
      const report = verifyTrail({
        dir: opts.dir,
        publicKeyPem: fs.readFileSync(opts.publicKey ?? path.join(opts.dir, PUBLIC_KEY_FILE), 'utf8'),
        ...(opts.from ? { from: parseTime(opts.from) } : {}),
        ...(opts.to ? { to: parseTime(opts.to) } : {}),
      });
      if (opts.json) {
        process.stdout.write(`${JSON.stringify(report, null, 2)}\n`);
      } else {
        for (const f of report.findings) process.stdout.write(`${formatFinding(f)}\n`);
        const problems = report.findings.filter((f) => f.severity === 'error').length;
        process.stdout.write(
          `${report.ok ? 'OK' : 'FAILED'}: ${report.files} file(s), ${report.records} record(s), ${report.digests} digest(s)${problems ? `, ${problems} problem(s)` : ''}\n`,
        );
      }
      process.exitCode = report.ok ? 0 : 1;
    });

  audit
    .command('query')
    .description('print matching records, oldest first (e.g. who decrypted with key X last week)')
    .requiredOption('--dir <dir>', 'audit trail directory')
    .option('--key <key>', 'key id or key ARN')
    .option('--principal <who>', 'principal ARN, access key id or account id')
    .option('--event <name>', 'event name, e.g. Decrypt')
    .option('--error [code]', 'only failed calls, or only this error code')
    .option('--from <time>', 'ISO 8601, or 30m/12h/7d ago')
    .option('--to <time>', 'ISO 8601, or 30m/12h/7d ago')
    .option('--json', 'print whole records as JSON Lines instead of a table')
    .action((opts: { dir: string; key?: string; principal?: string; event?: string; error?: boolean | string; from?: string; to?: string; json?: boolean }) => {
      const records = queryTrail(opts.dir, {
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
