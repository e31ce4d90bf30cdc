import type { Command } from 'commander';
import { loadConfig } from '../config/config';
import { restoreSetAside, SET_ASIDE_DIR } from './softhsm2-files';

/** `p11kms token …`: maintenance of the embedded SoftHSM2 token's files. */
export function registerTokenCommands(program: Command): void {
  const token = program.command('token').description('embedded SoftHSM2 token maintenance');
  token
    .command('restore-set-aside')
    .description(`put back the key object files start-up set aside in <data dir>/${SET_ASIDE_DIR} (a key value not marked as a token object), marked as token objects; stop the service first`)
    .option('--data-dir <dir>', 'data directory (P11KMS_DATA_DIR)')
    .action((opts: { dataDir?: string }) => {
      try {
        const { dataDir } = loadConfig({ flags: { dataDir: opts.dataDir } });
        const restored = restoreSetAside(dataDir);
        for (const file of restored) process.stdout.write(`restored ${file}\n`);
        process.stdout.write(`${restored.length} key object file(s) restored; start the service: keys the store refers to work again, others are counted as unknownTokenObjects in /health\n`);
      } catch (err) {
        process.stderr.write(`p11kms token restore-set-aside: ${(err as Error).message}\n`);
        process.exitCode = 1;
      }
    });
}
