import type { Logger } from 'pino';
import { throttled } from '../errors';
import type { HsmProfile } from './hsm-profile';

export type Session = Buffer;

/** The log says how many operations were shed at most this often. */
const SHED_REPORT_EVERY_MS = 1000;

type PoolLimits = Pick<HsmProfile, 'sessionPoolSize' | 'sessionQueueLimit' | 'sessionQueueMaxWaitMs'>;

interface Waiter {
  resolve: (session: Session) => void;
  /** When it began to wait (performance.now()). */
  since: number;
}

/**
 * A token's sessions: at most `sessionPoolSize` open, operations beyond that waiting in
 * arrival order, and load shedding. The token decides when a session may be reused or must
 * be closed (a failed call, a module being re-initialised); this decides who gets one.
 */
export class SessionPool {
  private readonly idle: Session[] = [];
  private readonly waiters: Waiter[] = [];
  /** Sessions open and counted against the limit: idle, in use, or being opened. */
  private open = 0;

  constructor(
    private readonly limits: PoolLimits,
    private readonly openSession: () => Session,
    private readonly closeSession: (session: Session) => void,
    private readonly onShed: (() => void) | undefined,
    private readonly log: Logger,
  ) {}

  /** Refusals since the last line the log has of them (see shedding). */
  private shedSinceReport = 0;
  private lastShedReport = -Infinity;
  private shedReportDue: NodeJS.Timeout | undefined;
  private lastShedReason = '';

  /**
   * An idle session, else a new one while fewer than the limit are open, else the next one
   * freed. With `mayShed`, refused with ThrottlingException instead of waiting while the queue
   * stands longer than sessionQueueMaxWaitMs or holds sessionQueueLimit operations.
   */
  take(mayShed: boolean): Session | Promise<Session> {
    const idle = this.idle.pop();
    if (idle) return idle;
    if (this.open < this.limits.sessionPoolSize) return this.openCounted();
    if (mayShed) {
      // Admission by queueing time: a burst the sessions drain within the target is served
      // whole (a count limit refused most of a burst the token could serve); a queue that
      // stands longer than the target means the token is short of capacity, and waiting
      // would only raise every admitted request's latency, so the client is told to back off
      // (AWS SDKs retry ThrottlingException). The count stays as a bound on memory.
      const waitedMs = this.oldestWaitMs();
      const why =
        this.waiters.length >= this.limits.sessionQueueLimit ? `session queue full (${this.waiters.length} waiting)`
        : waitedMs > this.limits.sessionQueueMaxWaitMs ? `session queue standing (oldest waiting ${Math.round(waitedMs)} ms)`
        : undefined;
      if (why) {
        this.shedding(why);
        throw throttled();
      }
    }
    return new Promise((resolve) => this.waiters.push({ resolve, since: performance.now() }));
  }

  /** A session fit for reuse: to the operation waiting longest, else idle. */
  give(session: Session): void {
    const waiter = this.waiters.shift();
    if (waiter) waiter.resolve(session);
    else this.idle.push(session);
  }

  /**
   * A session that must not be used again is closed. With `refill`, its place goes to the
   * operation waiting longest, on a new session; otherwise waiters stay until wake.
   */
  discard(session: Session, refill: boolean): void {
    this.closeSession(session);
    this.open--;
    if (refill) this.serveOne();
  }

  /**
   * A session left with a call that outlived its deadline: no longer counted, so its place
   * serves others meanwhile; the token closes it once the call answers.
   */
  abandon(refill: boolean): void {
    this.open--;
    if (refill) this.wake();
  }

  /** Serves waiters on new sessions while there is room (after a module re-initialisation). */
  wake(): void {
    while (this.waiters.length > 0 && this.open < this.limits.sessionPoolSize) if (!this.serveOne()) return;
  }

  /** Closes every idle session (the module instance they belong to is going). */
  closeIdle(): void {
    for (const session of this.idle.splice(0)) {
      this.closeSession(session);
      this.open--;
    }
  }

  /** Sessions running an operation. */
  get busy(): number {
    return this.open - this.idle.length;
  }

  usage(): { size: number; inUse: number; waiting: number; oldestWaitMs: number } {
    return { size: this.limits.sessionPoolSize, inUse: this.busy, waiting: this.waiters.length, oldestWaitMs: this.oldestWaitMs() };
  }

  /**
   * Counts a refusal and says so in the log at most once a second, with the number refused
   * since the last line: a line per refused request (as before) wrote hundreds a second exactly
   * while the process had no time to spare, each alike. Each refusal is still in the audit trail
   * (ThrottlingException) and in p11kms_token_shed_total.
   */
  private shedding(why: string): void {
    this.onShed?.();
    this.shedSinceReport++;
    this.lastShedReason = why;
    const waitMs = this.lastShedReport + SHED_REPORT_EVERY_MS - performance.now();
    if (waitMs <= 0) this.reportShedding();
    // The refusals of the last second are reported even if none follows them.
    else this.shedReportDue ??= setTimeout(() => this.reportShedding(), waitMs).unref();
  }

  private reportShedding(): void {
    clearTimeout(this.shedReportDue);
    this.shedReportDue = undefined;
    if (this.shedSinceReport === 0) return;
    this.log.warn({ refused: this.shedSinceReport, why: this.lastShedReason }, 'load shed: operations refused with ThrottlingException since the last report');
    this.shedSinceReport = 0;
    this.lastShedReport = performance.now();
  }

  /** How long the operation waiting longest has waited so far (0 when none waits). */
  private oldestWaitMs(): number {
    return this.waiters.length === 0 ? 0 : performance.now() - this.waiters[0].since;
  }

  private openCounted(): Session {
    this.open++;
    try {
      return this.openSession();
    } catch (err) {
      this.open--;
      throw err;
    }
  }

  /** The oldest waiter on a new session; false (and it keeps its place) when none can be opened. */
  private serveOne(): boolean {
    const waiter = this.waiters.shift();
    if (!waiter) return false;
    try {
      waiter.resolve(this.idle.pop() ?? this.openCounted());
      return true;
    } catch {
      this.waiters.unshift(waiter);
      return false;
    }
  }
}
