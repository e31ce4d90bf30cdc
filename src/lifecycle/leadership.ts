import type { Logger } from 'pino';
import type { MetadataStore } from '../store/metadata-store';

/** The one lock the background work of a deployment (sweeps, reconciliation) runs under. */
export const BACKGROUND_TASK = 'background-work';

/**
 * On a store shared by several processes, asks every `intervalMs` to run the background
 * work; the process that gets the lock (the first, the next one after its holder died, or
 * this one again after it lost it) runs `onGained` at once, so work is taken over within one
 * interval rather than at the next sweep. Each holding of the lock runs it once: a process
 * that lost the lock and took it again at once (another node may have held it meanwhile, or
 * its own pass was cut short) runs it again.
 */
export function watchLeadership(store: MetadataStore, intervalMs: number, log: Logger, onGained: () => Promise<void>): () => void {
  /** The holding onGained last ran for. */
  let ranFor: number | undefined;
  let busy = false;
  const timer = setInterval(() => {
    if (busy) return;
    busy = true;
    store
      .asLeader(BACKGROUND_TASK, async (term) => {
        if (term !== ranFor) {
          ranFor = term;
          log.info({ term }, 'running the background work now for this holding of the lock (takeover sweep)');
          await onGained();
        }
      })
      .catch((err: unknown) => log.error({ err: (err as Error).message }, 'background work after taking over failed'))
      .finally(() => {
        busy = false;
      });
  }, intervalMs);
  timer.unref();
  return () => clearInterval(timer);
}
