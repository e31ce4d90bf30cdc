import { Client, type ClientConfig } from 'pg';
import type { Logger } from 'pino';
import type { ChangeFeedState } from '../metadata-store';
import { checkLiveness, LIVENESS_DEADLINE_MS } from './connection-liveness';
import { queryInTurn } from './query-in-turn';

export const CHANGE_CHANNEL = 'p11kms_changes';
/** NOTIFY payloads must stay under 8000 bytes; a larger change invalidates everything. */
const MAX_PAYLOAD = 7_000;
/**
 * The fallback bound: a cached record is re-read after this long even when no notification
 * arrived, so a change that takes rights away is honoured by every node within one second
 * whatever happens to notifications.
 */
export const CACHE_TTL_MS = 500;
const RECONNECT_MS = 1_000;
/** The LISTEN connection's name in pg_stat_activity, for the database administrator. */
export const CHANGE_FEED_APPLICATION_NAME = 'p11kms change feed';

/** The NOTIFY payload naming what a committed transaction changed ('*' for everything). */
export function changePayload(names: Iterable<string>): string {
  const list = [...new Set(names)];
  const payload = JSON.stringify(list);
  return payload.length > MAX_PAYLOAD ? '"*"' : payload;
}

/**
 * Request-path reads (keys, aliases, a key's grants) served from memory for a short time.
 * Every committing transaction names what it changed in a NOTIFY; every node LISTENs and
 * drops those entries at once. Entries also expire after CACHE_TTL_MS, and while the LISTEN
 * connection is down nothing is cached at all.
 */
export class ReadCache {
  private readonly entries = new Map<string, { value: unknown; at: number }>();
  /** Loads running, by name, with the generation each began in. */
  private readonly loading = new Map<string, { value: Promise<unknown>; generation: number }>();
  /** Bumped on every invalidation, so a read that started before one is not cached after it. */
  private generation = 0;
  private listening = false;
  private listener: Client | undefined;
  private stopped = false;
  private reconnectTimer: NodeJS.Timeout | undefined;
  private stopLivenessCheck: (() => void) | undefined;
  private losses = 0;
  private notifications = 0;
  private readonly watchers = new Set<(names: readonly string[] | '*') => void>();

  constructor(
    private readonly connection: ClientConfig,
    private readonly log: Logger,
  ) {}

  async start(): Promise<void> {
    await this.listen();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.reconnectTimer);
    this.stopLivenessCheck?.();
    this.listening = false;
    await this.listener?.end().catch(() => undefined);
  }

  /**
   * The cached value, or `load`'s (cached when nothing changed meanwhile). Misses are not
   * cached. Callers that miss while a load of the same name runs, and nothing was invalidated
   * since it began, wait for that load instead of making their own: when an entry expired
   * under load, every request in flight on that key read it again (Encrypt × 64 on one key:
   * ~165 reads a second from one process where 6 would do).
   */
  get<T>(name: string, load: () => Promise<T>): Promise<T> {
    const hit = this.entries.get(name);
    if (hit && this.listening && Date.now() - hit.at < CACHE_TTL_MS) return Promise.resolve(hit.value as T);
    const running = this.loading.get(name);
    if (running && this.listening && running.generation === this.generation) return running.value as Promise<T>;
    const generation = this.generation;
    const at = Date.now();
    const value = load().then((loaded) => {
      if (this.listening && generation === this.generation && loaded !== undefined) this.entries.set(name, { value: loaded, at });
      return loaded;
    });
    const entry = { value, generation };
    this.loading.set(name, entry);
    const done = () => {
      if (this.loading.get(name) === entry) this.loading.delete(name);
    };
    value.then(done, done);
    return value;
  }

  invalidate(names: readonly string[] | '*'): void {
    this.generation++;
    if (names === '*') this.entries.clear();
    else for (const n of names) this.entries.delete(n);
    for (const watcher of this.watchers) watcher(names);
  }

  /** Hears every invalidation: what this node and the others committed, or '*'. */
  watch(watcher: (names: readonly string[] | '*') => void): () => void {
    this.watchers.add(watcher);
    return () => this.watchers.delete(watcher);
  }

  state(): ChangeFeedState {
    return { listening: this.listening, losses: this.losses, notifications: this.notifications };
  }

  private async listen(): Promise<void> {
    // Its only statements are LISTEN and the liveness check: each has LIVENESS_DEADLINE_MS.
    const client = new Client({ ...this.connection, application_name: CHANGE_FEED_APPLICATION_NAME, query_timeout: LIVENESS_DEADLINE_MS });
    client.on('notification', (msg) => {
      this.notifications++;
      try {
        const names = JSON.parse(msg.payload ?? '"*"') as string[] | '*';
        this.invalidate(names);
      } catch {
        this.invalidate('*');
      }
    });
    client.on('error', (err) => this.lost(client, err));
    client.on('end', () => this.lost(client, undefined));
    try {
      await client.connect();
      // In turn, as the liveness check later asks on the same connection.
      await queryInTurn(client, `LISTEN ${CHANGE_CHANNEL}`);
    } catch (err) {
      await client.end().catch(() => undefined);
      throw err;
    }
    this.listener = client;
    // Whatever changed while nobody listened is unknown: start empty.
    this.invalidate('*');
    this.listening = true;
    // Silent past its liveness check: dropped and opened again (lost() below).
    this.stopLivenessCheck = checkLiveness(client, 'LISTEN', (err) => this.lost(client, err));
  }

  private lost(client: Client, err: Error | undefined): void {
    if (this.listener !== client) return;
    this.listener = undefined;
    this.listening = false;
    this.stopLivenessCheck?.();
    this.invalidate('*');
    if (this.stopped) return;
    this.losses++;
    this.log.warn({ err: err?.message }, 'store change notifications lost; reading through until they are back');
    // A silent connection has its liveness query still waiting: end() then destroys the
    // socket instead of waiting for a goodbye that would never come.
    client.end().catch(() => undefined);
    const retry = () => {
      this.reconnectTimer = setTimeout(() => {
        if (this.stopped) return;
        this.listen().then(
          () => this.log.info('store change notifications back'),
          () => retry(),
        );
      }, RECONNECT_MS);
      this.reconnectTimer.unref();
    };
    retry();
  }
}
