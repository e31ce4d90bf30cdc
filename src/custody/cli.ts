import type { Command } from 'commander';
import { loadConfig } from '../config/config';
import { restoreSetAside, SET_ASIDE_DIR } from './softhsm2-files';
import { withTokenLock } from './startup-lock';
import { liveTokenUsers } from './token-users';

/** `p11kms token …`: maintenance of the embedded SoftHSM2 token's files. */
export function registerTokenCommands(program: Command): void {
  const token = program.command('token').description('embedded SoftHSM2 token maintenance');
  token
    .command('restore-set-aside')
    .description(`put back the key object files start-up set aside in <data dir>/${SET_ASIDE_DIR} (a key value not marked as a token object), marked as token objects; stop the service first`)
    .option('--data-dir <dir>', 'data directory (P11KMS_DATA_DIR)')
    .action(async (opts: { dataDir?: string }) => {
      try {
        const { dataDir } = loadConfig({ flags: { dataDir: opts.dataDir } });
        // Under the token lock: a service starting meanwhile records itself first and then
        // waits for the lock, so it either refuses this or loads the restored files.
        const restored = await withTokenLock(dataDir, () => {
          // A running service would pick the files up at SoftHSM2's next scan while its own
          // reconciliation has already decided about them.
          const running = liveTokenUsers(dataDir).map((user) => user.pid);
          if (running.length > 0) throw new Error(`the service is running on ${dataDir} (pid ${running.join(', ')}); stop it first`);
          return restoreSetAside(dataDir);
        });
        for (const file of restored) process.stdout.write(`restored ${file}\n`);
        process.stdout.write(`${restored.length} key object file(s) restored; start the service: keys the store refers to work again, others are counted as unknownTokenObjects in /health\n`);
      } catch (err) {
        process.stderr.write(`p11kms token restore-set-aside: ${(err as Error).message}\n`);
        process.exitCode = 1;
      }
    });
}
