import type { Services } from '../operations';
import { BACKGROUND_TASK } from './leadership';

/**
 * What the deletion and material sweepers share: a pass run at start-up, then every
 * `intervalMs`, and on demand, in the one process of a deployment that holds the store's
 * background lock (the others skip it and answer `nothing()`). Concurrent calls share one
 * pass; stop waits for the pass under way. Subclasses say what one pass does.
 */
export abstract class PeriodicSweep<T> {
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<T> | undefined;

  protected constructor(
    protected readonly services: Services,
    private readonly intervalMs: number,
    /** The log message of a failed periodic pass. */
    private readonly failure: string,
  ) {}

  /** One pass, run while this process holds the background lock. */
  protected abstract sweepOnce(): Promise<T>;

  /** The answer of a pass this process did not run (it does not lead). */
  protected abstract nothing(): T;

  start(): void {
    this.timer = setInterval(() => void this.sweep().catch((err: unknown) => this.services.log.error({ err }, this.failure)), this.intervalMs);
    this.timer.unref();
  }

  async stop(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    await this.running?.catch(() => undefined);
  }

  /** Runs a pass, or joins the one under way. */
  sweep(): Promise<T> {
    // One process of a deployment sweeps (the store's background lock); the others skip.
    this.running ??= this.services.store
      .asLeader(BACKGROUND_TASK, () => this.sweepOnce())
      .then((result) => result ?? this.nothing())
      .finally(() => {
        this.running = undefined;
      });
    return this.running;
  }

  /** A pass begun now, not one already under way (under an earlier holding of the lock, perhaps cut short). */
  async sweepAfresh(): Promise<T> {
    await this.running?.catch(() => undefined);
    return this.sweep();
  }
}
