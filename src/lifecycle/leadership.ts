import type { Logger } from 'pino';
import type { MetadataStore } from '../store/metadata-store';

/** The one lock the background work of a deployment (sweeps, reconciliation) runs under. */
export const BACKGROUND_TASK = 'background-work';

/**
 * On a store shared by several processes, asks every `intervalMs` to run the background
 * work; the process that gets the lock (the first, or the next one after its holder died)
 * runs `onGained` at once, so work is taken over within one interval rather than at the
 * next sweep.
 */
export function watchLeadership(store: MetadataStore, intervalMs: number, log: Logger, onGained: () => Promise<void>): () => void {
  let leader = false;
  let busy = false;
  const timer = setInterval(() => {
    if (busy) return;
    busy = true;
    store
      .asLeader(BACKGROUND_TASK, async () => {
        if (!leader) {
          leader = true;
          await onGained();
        }
      })
      .then((ran) => {
        if (ran === undefined) leader = false;
      })
      .catch((err: unknown) => log.error({ err: (err as Error).message }, 'background work after taking over failed'))
      .finally(() => {
        busy = false;
      });
  }, intervalMs);
  timer.unref();
  return () => clearInterval(timer);
}
