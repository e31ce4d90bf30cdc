import type { Command } from 'commander';
import { type Config, loadConfig, loadHsmProfile } from '../../config/config';
import { ExternalKeys } from '../../custody/external-keys';
import { Token } from '../../custody/token';
import { createLogger } from '../../log';

/**
 * `p11kms xks create-key|list-keys`: the only way external keys come to exist (the XKS API
 * never creates keys). Works on the token of the same configuration as `serve`, while the
 * service runs or not.
 */
export function registerXksCommands(program: Command): void {
  const xks = program.command('xks').description('external keys served by the XKS proxy listener (docs/xks.md)');
  const withToken = async (opts: { config?: string; dataDir?: string; hsmProfile?: string }, fn: (keys: ExternalKeys) => Promise<void>) => {
    const flags: Partial<Record<keyof Config, string>> = { dataDir: opts.dataDir, hsmProfile: opts.hsmProfile };
    const config = loadConfig({ file: opts.config, flags });
    const token = Token.open(loadHsmProfile(config), config.dataDir, createLogger('warn'));
    try {
      await fn(new ExternalKeys(token));
    } finally {
      token.close();
    }
  };
  const common = (c: Command) =>
    c
      .option('--config <file>', 'JSON config file, as for serve')
      .option('--data-dir <dir>', 'data directory (P11KMS_DATA_DIR)')
      .option('--hsm-profile <file>', 'HSM profile (P11KMS_HSM_PROFILE)');

  common(xks.command('create-key').description('generate an AES-256 external key in the token').requiredOption('--id <externalKeyId>', 'the XksKeyId AWS KMS will name it by: 1-128 of [A-Za-z0-9._-]')).action(
    async (opts: { id: string; config?: string; dataDir?: string; hsmProfile?: string }) => {
      if (!/^[A-Za-z0-9._-]{1,128}$/.test(opts.id)) {
        process.stderr.write('p11kms: --id must be 1-128 characters of [A-Za-z0-9._-]\n');
        process.exitCode = 2;
        return;
      }
      await withToken(opts, async (keys) => {
        const created = await keys.create(opts.id);
        process.stdout.write(created ? `created external key ${opts.id}\n` : `external key ${opts.id} exists already\n`);
        if (!created) process.exitCode = 1;
      });
    },
  );
  common(xks.command('list-keys').description('list the external keys in the token')).action(async (opts: { config?: string; dataDir?: string; hsmProfile?: string }) => {
    await withToken(opts, async (keys) => {
      for (const id of await keys.list()) process.stdout.write(`${id}\n`);
    });
  });
}
