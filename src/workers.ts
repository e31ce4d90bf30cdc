import cluster, { type Worker } from 'node:cluster';
import type { Logger } from 'pino';

/** A worker that dies this many times in a row before serving means the set-up is wrong. */
const MAX_FAILED_STARTS = 5;
const RESTART_DELAY_MS = 500;

/**
 * The primary of `serve --workers N`: N serving processes share the listening port through
 * node's cluster module; a worker that dies is replaced; SIGTERM/SIGINT is passed to every
 * worker, which drains and stops, and the primary exits when all have. The primary itself
 * opens neither store nor token.
 */
export function superviseWorkers(count: number, log: Logger): void {
  let stopping = false;
  let failedStarts = 0;
  const listening = new Set<number>();

  // Each worker accepts its own connections from the shared socket. Node's default
  // round-robin has the primary accept and hand connections over; one handed to a worker
  // that was just killed is never closed, and its client waits for ever (measured: 9 hung
  // requests in 10 kill -9 under load; none with this policy).
  cluster.schedulingPolicy = cluster.SCHED_NONE;
  const fork = (): Worker => cluster.fork();

  cluster.on('listening', (worker, address) => {
    listening.add(worker.id);
    failedStarts = 0;
    log.info({ worker: worker.id, workerPid: worker.process.pid, port: address.port }, 'worker listening');
  });
  cluster.on('exit', (worker, code, signal) => {
    const served = listening.delete(worker.id);
    if (stopping) {
      if (Object.keys(cluster.workers ?? {}).length === 0) {
        log.info('all workers stopped');
        // Giving up set exitCode 1: a service manager must see the failure.
        process.exit();
      }
      return;
    }
    if (!served && ++failedStarts >= MAX_FAILED_STARTS) {
      log.fatal({ failedStarts }, 'workers keep dying before they serve; giving up');
      process.stderr.write(`p11kms: ${failedStarts} workers in a row died before serving (see the log above); stopping\n`);
      stopping = true;
      for (const w of Object.values(cluster.workers ?? {})) w?.process.kill('SIGTERM');
      process.exitCode = 1;
      if (Object.keys(cluster.workers ?? {}).length === 0) process.exit(1);
      return;
    }
    log.error({ worker: worker.id, workerPid: worker.process.pid, code, signal }, 'worker died; starting another');
    // Not unref'd: when every worker died at once, this timer is all that keeps the
    // supervisor alive; unref'd, it exited 0 with no worker and no message.
    setTimeout(() => {
      if (!stopping) fork();
    }, RESTART_DELAY_MS);
  });

  const stop = (signal: NodeJS.Signals) => {
    if (stopping) return;
    stopping = true;
    log.info({ signal }, 'stopping every worker');
    const workers = Object.values(cluster.workers ?? {});
    if (workers.length === 0) process.exit(0);
    for (const w of workers) w?.process.kill('SIGTERM');
  };
  process.once('SIGTERM', () => stop('SIGTERM'));
  process.once('SIGINT', () => stop('SIGINT'));
  // Reload (credentials, TLS) and on-demand digests are each worker's own business; unhandled
  // here, SIGHUP would end the supervisor.
  for (const signal of ['SIGHUP', 'SIGUSR2'] as const) {
    process.on(signal, () => {
      for (const w of Object.values(cluster.workers ?? {})) w?.process.kill(signal);
    });
  }
  log.info({ workers: count, primaryPid: process.pid }, 'starting workers');
  for (let i = 0; i < count; i++) fork();
}

export const isWorker = (): boolean => cluster.isWorker;
