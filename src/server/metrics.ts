import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import { Counter, Gauge, Histogram, type LabelValues, Registry, collectDefaultMetrics } from 'prom-client';
import type { AuditEvent, AuditSink } from '../audit/event';
import type { TokenObserver } from '../custody/token';
import type { MetadataStore } from '../store/metadata-store';

/** Seconds; from a fast token call (~0.1 ms) to a slow RSA-4096 key generation. */
const LATENCY_BUCKETS = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];

export interface PoolState {
  usage(): { size: number; inUse: number; waiting: number; oldestWaitMs: number };
  /** The session of the service's own duty (audit digest signatures), beside the pool. */
  dutyUsage(): { size: number; inUse: number; waiting: number };
}

const UNTIMED_STORE_METHODS = new Set(['close', 'serialiseKey', 'changeFeedState', 'backgroundLocksState', 'discardedConnections', 'warmUps']);

/** Observations of the request path between scrapes: queued by then, folded in bulk. */
const FOLD_AT_OBSERVATIONS = 4096;

/**
 * Observations made on the request path (request and token call latencies, store call
 * latencies, request counts), queued and handed to prom-client in one loop: before any of
 * their metrics is read (prom-client's `collect`, at every scrape) and whenever
 * FOLD_AT_OBSERVATIONS have queued. prom-client finds a label set's series by hashing its
 * labels at every observation; inside a request that cost ~1.3 µs each under the profiler
 * (~7 per Encrypt), in a loop of thousands a fraction of it. A scrape sees every observation
 * made before it, as before.
 */
class ObservationQueue {
  private readonly targets: Array<(labels: LabelValues<string>, value: number) => void> = [];
  private readonly labels: Array<LabelValues<string>> = [];
  private readonly values: number[] = [];

  add(target: (labels: LabelValues<string>, value: number) => void, labels: LabelValues<string>, value: number): void {
    this.targets.push(target);
    this.labels.push(labels);
    this.values.push(value);
    if (this.values.length >= FOLD_AT_OBSERVATIONS) this.fold();
  }

  fold(): void {
    const { targets, labels, values } = this;
    for (let i = 0; i < values.length; i++) targets[i](labels[i], values[i]);
    targets.length = 0;
    labels.length = 0;
    values.length = 0;
  }
}

/**
 * The service's Prometheus metrics in a registry of its own (no global registry). Labels are
 * bounded sets only: dialect, AWS operation name, AWS error name, PKCS#11 function, store
 * method, key state and spec. Never key ids, aliases, principals or account ids.
 */
export class ServiceMetrics {
  readonly registry = new Registry();
  private readonly queued = new ObservationQueue();
  private readonly foldQueued = () => this.queued.fold();
  private readonly requests = new Counter({
    name: 'p11kms_requests_total',
    help: 'API requests answered, by wire dialect, AWS operation and AWS error name ("none" for success).',
    labelNames: ['dialect', 'operation', 'error'],
    registers: [this.registry],
    collect: this.foldQueued,
  });
  private readonly requestSeconds = new Histogram({
    name: 'p11kms_request_duration_seconds',
    help: 'Time from the request arriving to its response being sent, by dialect and AWS operation.',
    labelNames: ['dialect', 'operation'],
    buckets: LATENCY_BUCKETS,
    registers: [this.registry],
    collect: this.foldQueued,
  });
  private readonly tokenSeconds = new Histogram({
    name: 'p11kms_token_call_duration_seconds',
    help: 'Duration of PKCS#11 calls, by function.',
    labelNames: ['function', 'outcome'],
    buckets: LATENCY_BUCKETS,
    registers: [this.registry],
    collect: this.foldQueued,
  });
  private readonly shed = new Counter({
    name: 'p11kms_token_shed_total',
    help: 'Operations refused with ThrottlingException because the token session queue stood past sessionQueueMaxWaitMs or held sessionQueueLimit operations.',
    registers: [this.registry],
  });
  private readonly storeSeconds = new Histogram({
    name: 'p11kms_store_duration_seconds',
    help: 'Duration of metadata store calls, by method.',
    labelNames: ['method'],
    buckets: LATENCY_BUCKETS,
    registers: [this.registry],
    collect: this.foldQueued,
  });
  private readonly auditFsyncSeconds = new Histogram({
    name: 'p11kms_audit_fsync_duration_seconds',
    help: 'Duration of each fdatasync of the audit trail.',
    buckets: LATENCY_BUCKETS,
    registers: [this.registry],
  });
  /** Labels of answered requests by request id, until the response has left (latency). */
  private readonly pending = new Map<string, { dialect: string; operation: string }>();

  constructor() {
    collectDefaultMetrics({ register: this.registry, prefix: 'p11kms_process_' });
  }

  /**
   * Token session gauges, read when scraped, by pool: `operations` (sessionPoolSize, every
   * request's) and `duty` (the one session audit digests are signed on, never shed nor queued
   * behind requests). Both are sessions the token must allow: an operator sizing its session
   * limit sums them; one watching saturation reads `operations`.
   */
  watchPool(pool: PoolState): void {
    const byPool = (name: string, help: string, pick: (u: ReturnType<PoolState['dutyUsage']>) => number) =>
      new Gauge({
        name,
        help,
        labelNames: ['pool'],
        registers: [this.registry],
        collect() {
          this.set({ pool: 'operations' }, pick(pool.usage()));
          this.set({ pool: 'duty' }, pick(pool.dutyUsage()));
        },
      });
    byPool('p11kms_token_sessions', 'Token sessions this process may hold open, by pool: operations (sessionPoolSize) and duty (the audit digest signature\'s own session).', (u) => u.size);
    byPool('p11kms_token_sessions_in_use', 'Token sessions running an operation, by pool (operations, duty).', (u) => u.inUse);
    byPool('p11kms_token_sessions_waiting', 'Operations waiting for a token session, by pool (operations, duty).', (u) => u.waiting);
    new Gauge({ name: 'p11kms_token_queue_oldest_wait_seconds', help: 'How long the operation waiting longest for a pooled token session has waited so far (0: none waits); load shedding starts above sessionQueueMaxWaitMs.', registers: [this.registry], collect() { this.set(pool.usage().oldestWaitMs / 1000); } });
  }

  watchAudit(state: () => { queued: number; failure: string | undefined }): void {
    new Gauge({ name: 'p11kms_audit_queue_depth', help: 'Audit records accepted and not yet written.', registers: [this.registry], collect() { this.set(state().queued); } });
    // Requests are refused while the trail cannot be written (docs/audit.md): the one alert an operator needs.
    new Gauge({ name: 'p11kms_audit_trail_writable', help: '1 while the audit trail accepts records, 0 while a write failure refuses requests.', registers: [this.registry], collect() { this.set(state().failure === undefined ? 1 : 0); } });
  }

  /** Keys by state and spec, counted from the store when scraped. */
  watchKeys(store: MetadataStore): void {
    new Gauge({
      name: 'p11kms_keys',
      help: 'KMS keys by key state and key spec (all accounts and regions).',
      labelNames: ['state', 'spec'],
      registers: [this.registry],
      async collect() {
        this.reset();
        for (const { keyState, keySpec, count } of await store.countKeys()) this.set({ state: keyState, spec: keySpec }, count);
      },
    });
  }

  /**
   * The store's change feed (PostgreSQL: the LISTEN connection), read when scraped. An alert
   * on listening 0, or on losses rising, says a node misses other nodes' changes for up to
   * the cache's 500 ms (it reads through meanwhile) and is reconnecting.
   */
  watchChangeFeed(store: MetadataStore): void {
    const state = store.changeFeedState?.bind(store);
    if (!state) return;
    new Gauge({ name: 'p11kms_store_change_feed_listening', help: '1 while the connection that hears other processes\' store changes is up, 0 while it is reconnecting (nothing is cached meanwhile).', registers: [this.registry], collect() { this.set(state().listening ? 1 : 0); } });
    new Counter({ name: 'p11kms_store_change_feed_losses_total', help: 'Times the change notification connection was found lost: closed, failed, or silent past its liveness check.', registers: [this.registry], collect() { this.reset(); this.inc(state().losses); } });
    new Counter({ name: 'p11kms_store_change_notifications_total', help: 'Store change notifications received (every committed change of every process, this one\'s included).', registers: [this.registry], collect() { this.reset(); this.inc(state().notifications); } });
  }

  /**
   * Pooled store connections found dead by their check before use (PostgreSQL), read when
   * scraped. Rising says connections to the database die unheard while idle (a firewall's
   * idle timeout, a failover behind a silent network): requests pay a check's deadline for it.
   */
  watchStoreConnections(store: MetadataStore): void {
    const discarded = store.discardedConnections?.bind(store);
    if (!discarded) return;
    new Counter({ name: 'p11kms_store_connections_discarded_total', help: 'Pooled PostgreSQL connections destroyed because they did not answer their check before use (storeIdleCheckTimeoutMs); once one fails, every idle one is checked at once.', registers: [this.registry], collect() { this.reset(); this.inc(discarded()); } });
  }

  /**
   * Which process runs the cluster's background work (PostgreSQL: who holds its advisory
   * lock), read when scraped. Exactly one node of a cluster should say 1; losses rising on
   * a node says its lock session was found dead and it stepped down.
   */
  watchBackgroundLocks(store: MetadataStore, task: string): void {
    const state = store.backgroundLocksState?.bind(store);
    if (!state) return;
    new Gauge({ name: 'p11kms_background_leader', help: '1 while this process holds the lock of the cluster\'s background work (sweeps, rotations, audit outbox delivery) and runs it, else 0.', registers: [this.registry], collect() { this.set(state().held.includes(task) ? 1 : 0); } });
    new Counter({ name: 'p11kms_background_leadership_losses_total', help: 'Times the session holding background-work locks was found lost (closed, failed, or silent past its liveness check): this process stepped down.', registers: [this.registry], collect() { this.reset(); this.inc(state().losses); } });
  }

  observeFsync = (seconds: number): void => {
    this.auditFsyncSeconds.observe(seconds);
  };

  private readonly observeToken = (labels: LabelValues<string>, seconds: number) => this.tokenSeconds.observe(labels, seconds);
  /** Label sets of token calls by function and outcome, made once each (a few dozen functions). */
  private readonly tokenLabels = new Map<string, LabelValues<string>>();

  readonly tokenObserver: TokenObserver = {
    call: (fn, seconds, failed) => {
      const outcome = failed ? 'error' : 'ok';
      const key = `${fn} ${outcome}`;
      let labels = this.tokenLabels.get(key);
      if (!labels) this.tokenLabels.set(key, (labels = { function: fn, outcome }));
      this.queued.add(this.observeToken, labels, seconds);
    },
    shed: () => this.shed.inc(),
  };

  private readonly countRequest = (labels: LabelValues<string>, count: number) => this.requests.inc(labels, count);
  private readonly observeRequest = (labels: LabelValues<string>, seconds: number) => this.requestSeconds.observe(labels, seconds);

  /**
   * Counts every API call from its audit record: every dialect writes exactly one per request,
   * with the AWS operation and error name, so no wire code needs to know about metrics.
   */
  countingAudit(sink: AuditSink): AuditSink {
    return {
      record: (event: AuditEvent) => {
        if (event.eventType === 'AwsApiCall') {
          const dialect = String(event.additionalEventData?.dialect ?? 'unknown');
          this.queued.add(this.countRequest, { dialect, operation: event.eventName, error: event.errorCode ?? 'none' }, 1);
          // A client that hung up before its record was written never closes a response here.
          if (this.pending.size > 10_000) this.pending.clear();
          if (event.requestID) this.pending.set(event.requestID, { dialect, operation: event.eventName });
        }
        return sink.record(event);
      },
    };
  }

  /** Request latency, measured at the HTTP server so that it covers parsing and the audit write. */
  timeRequests(server: Server): void {
    server.on('request', (_req: IncomingMessage, res: ServerResponse) => {
      const started = process.hrtime.bigint();
      res.once('close', () => {
        const id = res.getHeader('x-amzn-RequestId') ?? res.getHeader('X-Request-Id');
        const labels = typeof id === 'string' ? this.pending.get(id) : undefined;
        if (!labels) return;
        this.pending.delete(id as string);
        this.queued.add(this.observeRequest, labels, Number(process.hrtime.bigint() - started) / 1e9);
      });
    });
  }

  /** The store, with every call timed (any backend: the wrapper only sees the interface). */
  timedStore<S extends MetadataStore>(store: S): S {
    const histogram = this.storeSeconds;
    const queued = this.queued;
    const observe = (labels: LabelValues<string>, seconds: number) => histogram.observe(labels, seconds);
    // One wrapper per method, made on first use: the store is called several times per request.
    const wrappers = new Map<string, (...args: unknown[]) => unknown>();
    return new Proxy(store, {
      get(target, property, receiver) {
        const value: unknown = Reflect.get(target, property, receiver);
        // serialiseKey spans a whole mutation (token work included): not a store call's time;
        // changeFeedState, backgroundLocksState and discardedConnections read memory; warmUps
        // hands out steps that run outside any request.
        if (typeof value !== 'function' || typeof property !== 'string' || UNTIMED_STORE_METHODS.has(property)) return value;
        let wrapper = wrappers.get(property);
        if (!wrapper) {
          const labels = { method: property };
          const method = value as (...a: unknown[]) => unknown;
          wrapper = (...args: unknown[]) => {
            const started = performance.now();
            const end = () => queued.add(observe, labels, (performance.now() - started) / 1000);
            const result = method.apply(target, args);
            if (!(result instanceof Promise)) {
              end();
              return result;
            }
            return result.then(
              (r: unknown) => (end(), r),
              (err: unknown) => (end(), Promise.reject(err)),
            );
          };
          wrappers.set(property, wrapper);
        }
        return wrapper;
      },
    });
  }

  async render(): Promise<{ contentType: string; body: string }> {
    return { contentType: this.registry.contentType, body: await this.registry.metrics() };
  }
}
