import * as fs from 'node:fs';
import * as path from 'node:path';
import type { Logger } from 'pino';
import type { Digests } from './digests';

/** `audit rotate-key` asks the running service by creating this file in the trail directory. */
export const ROTATE_KEY_REQUEST_FILE = 'rotate-signing-key.request';

/** The schedule (signingKeyRotationDays) and `audit rotate-key` (a request file in the trail directory). */
export class SigningKeyRotation {
  private rotating = false;
  private watcher: fs.FSWatcher | undefined;

  constructor(
    private readonly dir: string,
    private readonly days: number,
    private readonly digests: Pick<Digests, 'keyDue'>,
    private readonly rotate: (reason: string) => Promise<void>,
    /** False once the trail has failed or closed: no digest can be signed then. */
    private readonly accepting: () => boolean,
    private readonly log: Logger,
  ) {}

  start(): void {
    // `audit rotate-key` creates the request file; the check runs at once instead of at the next tick.
    this.watcher = fs.watch(this.dir, (_event, file) => {
      if (file === ROTATE_KEY_REQUEST_FILE) this.check();
    });
    this.watcher.on('error', (err) => this.log.warn({ err: err.message }, 'watching the audit directory for `audit rotate-key` failed; the request is still seen within a minute'));
    this.watcher.unref();
    this.check();
  }

  check(): void {
    if (!this.accepting()) return;
    const requested = fs.existsSync(path.join(this.dir, ROTATE_KEY_REQUEST_FILE));
    const due = this.digests.keyDue(this.days);
    if ((!requested && !due) || this.rotating) return;
    this.rotating = true;
    void this.rotate(requested ? 'rotate-key-requested' : 'rotate-key-scheduled')
      .then(() => fs.rmSync(path.join(this.dir, ROTATE_KEY_REQUEST_FILE), { force: true }))
      .catch((err: unknown) => this.log.error({ err: (err as Error).message }, 'audit signing key rotation failed'))
      .finally(() => {
        this.rotating = false;
      });
  }

  stop(): void {
    this.watcher?.close();
  }
}
