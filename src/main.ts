#!/usr/bin/env node
import { Command } from 'commander';
import { startService } from './app';
import { registerAuditCommands } from './audit/cli';
import { type Config, loadConfig } from './config/config';
import { registerTokenCommands } from './custody/cli';
import { createLogger } from './log';
import { handleSignals } from './server/signals';
import { registerStoreCommands } from './store/cli';
import { isWorker, superviseWorkers } from './workers';
import { registerXksCommands } from './wire/xks/cli';

const program = new Command()
  .name('p11kms')
  .description('AWS KMS-compatible key management service with every master key in a PKCS#11 token');

program
  .command('serve')
  .description('start the service')
  .option('--config <file>', 'JSON config file: any setting of README.md, Configuration')
  .option('--host <host>', 'listen address (P11KMS_HOST)')
  .option('--port <port>', 'listen port, 0 for any free port (P11KMS_PORT)')
  .option('--data-dir <dir>', 'metadata store and embedded token directory (P11KMS_DATA_DIR)')
  .option('--account-id <id>', 'account id of permissive-mode callers (P11KMS_ACCOUNT_ID)')
  .option('--auth <mode>', 'strict or permissive (P11KMS_AUTH)')
  .option('--credentials-file <file>', 'access keys for SigV4 (P11KMS_CREDENTIALS_FILE)')
  .option('--hsm-profile <file>', 'HSM profile, e.g. native-config/softhsm2.json (P11KMS_HSM_PROFILE)')
  .option('--log-level <level>', 'trace, debug, info, warn, error (P11KMS_LOG_LEVEL)')
  .option('--store-url <url>', 'postgres://… to share the metadata between processes and hosts (P11KMS_STORE_URL)')
  .option('--workers <n>', 'serving processes on this host sharing the port; more than one needs --store-url (P11KMS_WORKERS)')
  .action(async (opts: Record<string, string | undefined>) => {
    const flags: Partial<Record<keyof Config, string>> = {
      host: opts.host,
      port: opts.port,
      dataDir: opts.dataDir,
      accountId: opts.accountId,
      auth: opts.auth,
      credentialsFile: opts.credentialsFile,
      hsmProfile: opts.hsmProfile,
      logLevel: opts.logLevel,
      storeUrl: opts.storeUrl,
      workers: opts.workers,
    };
    let config: Config;
    try {
      config = loadConfig({ file: opts.config, flags });
    } catch (err) {
      process.stderr.write(`p11kms: ${(err as Error).message}\n`);
      process.exit(2);
    }
    const log = createLogger(config.logLevel);
    if (config.workers > 1 && !isWorker()) {
      superviseWorkers(config.workers, log);
      return;
    }
    try {
      const service = await startService(config, log);
      // Plain lines on stdout for scripts and tests waiting for the service (the XKS line first).
      if (service.xksUrl) process.stdout.write(`p11kms xks proxy listening on ${service.xksUrl}\n`);
      process.stdout.write(`p11kms listening on ${service.url}\n`);
      handleSignals(service, log);
      // A worker whose primary is gone stops too, rather than serve unsupervised.
      if (isWorker()) process.once('disconnect', () => process.kill(process.pid, 'SIGTERM'));
    } catch (err) {
      log.fatal({ err: (err as Error).message }, 'p11kms could not start');
      process.stderr.write(`p11kms: ${(err as Error).message}\n`);
      process.exit(1);
    }
  });

registerAuditCommands(program);
registerStoreCommands(program);
registerTokenCommands(program);
registerXksCommands(program);

void program.parseAsync(process.argv);
