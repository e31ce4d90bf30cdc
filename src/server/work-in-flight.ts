/**
 * Requests being worked on, from their body being read to their audit record being written,
 * whether or not their client is still connected. Draining the HTTP server is not enough
 * before closing the token: a client that gives up closes its connection while its operation
 * (an RSA-4096 key generation, say) is still running in the token, and finalising the module
 * under it crashes the process.
 */
export class WorkInFlight {
  private count = 0;
  private readonly waiting: Array<() => void> = [];

  /** Counts `work` until it settles (its outcome is the caller's business). */
  track(work: Promise<unknown>): void {
    this.count++;
    void work.finally(() => {
      this.count--;
      if (this.count === 0) for (const resolve of this.waiting.splice(0)) resolve();
    });
  }

  get size(): number {
    return this.count;
  }

  /** True once nothing is in flight; false if `limitMs` passes first. */
  async settled(limitMs: number): Promise<boolean> {
    if (this.count === 0) return true;
    let timer: NodeJS.Timeout | undefined;
    const done = await Promise.race([
      new Promise<boolean>((resolve) => this.waiting.push(() => resolve(true))),
      new Promise<boolean>((resolve) => (timer = setTimeout(() => resolve(false), Math.max(0, limitMs)))),
    ]);
    clearTimeout(timer);
    return done;
  }
}
