import type { Logger } from 'pino';
import type { RunningService } from '../app';

/**
 * Process signals of a running service, as systemd and operators use them:
 * SIGTERM / SIGINT: graceful drain, then exit 0 (1 if the drain failed); a second one exits at once.
 * SIGHUP: reload credentials and TLS material (a broken file is refused, the old one stays).
 * SIGUSR2: sign an audit digest of everything written so far.
 */
export function handleSignals(service: RunningService, log: Logger): void {
  let stopping = false;
  const stop = (signal: NodeJS.Signals) => {
    if (stopping) {
      log.warn({ signal }, 'second stop signal: exiting at once without draining');
      process.exit(1);
    }
    stopping = true;
    log.info({ signal }, 'shutting down: draining');
    service.close().then(
      () => {
        log.info('shut down cleanly');
        process.exit(0);
      },
      (err: unknown) => {
        log.error({ err: (err as Error).message }, 'shutdown failed');
        process.exit(1);
      },
    );
  };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
  process.on('SIGHUP', () => {
    try {
      service.reload();
      log.info('SIGHUP: credentials and TLS material reloaded');
    } catch (err) {
      log.error({ err: (err as Error).message }, 'SIGHUP: reload refused, the previous credentials and TLS material stay in force');
    }
  });
  process.on('SIGUSR2', () => void service.audit.digestNow('on-demand').catch((err: unknown) => log.error({ err: (err as Error).message }, 'on-demand audit digest failed')));
}
