import type { Command } from 'commander';
import { createLogger } from '../log';
import { migrateStore, openLocation } from './migrate';
import { redactUrl } from './open-store';

/** `p11kms store migrate`: move the metadata between the JSON store and PostgreSQL, either way. */
export function registerStoreCommands(program: Command): void {
  const store = program.command('store').description('metadata store maintenance');
  store
    .command('migrate')
    .description('copy every custom key store, key, alias and grant from one store to another (idempotent; verifies what it copied); stop the JSON store\'s service first')
    .requiredOption('--from <location>', 'data directory of a JSON store (e.g. ./var) or postgres://…')
    .requiredOption('--to <location>', 'postgres://… or a data directory')
    .option('--json', 'print the report as JSON')
    .action(async (opts: { from: string; to: string; json?: boolean }) => {
      const log = createLogger('warn');
      let source;
      let target;
      try {
        source = await openLocation(opts.from, log);
        target = await openLocation(opts.to, log);
        const report = await migrateStore(source, target);
        if (opts.json) process.stdout.write(`${JSON.stringify(report, null, 2)}\n`);
        else {
          process.stdout.write(`migrated ${redactUrl(opts.from)} -> ${redactUrl(opts.to)}\n`);
          for (const [kind, r] of Object.entries(report)) {
            process.stdout.write(`${kind}: ${r.inSource} in source, ${r.copied} copied, ${r.alreadyThere} already there; ${r.inTarget} in target\n`);
          }
          process.stdout.write('verified: every source record reads back identical from the target\n');
        }
      } catch (err) {
        process.stderr.write(`p11kms store migrate: ${(err as Error).message}\n`);
        process.exitCode = 1;
      } finally {
        await source?.close().catch(() => undefined);
        await target?.close().catch(() => undefined);
      }
    });
}
