import type { Logger } from 'pino';
import type { KeyCustody } from '../custody/key-custody';
import type { SecretSealer } from '../custody/secret-sealer';
import type { TokenBackends } from '../custody/token-backends';
import type { ConnectionErrorCodeType, ConnectionStateType } from '../model/generated/types';
import type { MetadataStore } from '../store/metadata-store';
import { customKeyStoresIn } from '../store/record-names';
import type { CustomKeyStoreRecord } from '../store/records';
import type { XksFailure } from './xks-client';

/** What connecting to an external key store needs: the XKS health check (src/keystores/xks-client.ts). */
export interface XksConnector {
  /** A failed check names AWS's ConnectionErrorCode and, when the call itself failed, how. */
  healthCheck(store: CustomKeyStoreRecord, secret: string, requestId: string, operation: string): Promise<{ ok: true } | { ok: false; code: ConnectionErrorCodeType; failure?: XksFailure }>;
}

interface Connection {
  state: ConnectionStateType;
  errorCode?: ConnectionErrorCodeType;
  /** The record's connectGeneration this connection was made for. */
  generation: number;
}

/**
 * The connection state of every custom key store in this process (its token sessions or
 * its proxy), held in memory. Connect is asynchronous as on AWS: CONNECTING at once, then
 * CONNECTED or FAILED with AWS's ConnectionErrorCode.
 *
 * What the owner asked for is shared, in the store's record (connectRequested); every
 * process sharing the store converges to it: at start-up, on every change the store
 * reports (watchChanges: Connect and Disconnect through another process), and whenever a
 * request reads the record. Until it has, each process reports its own state (CONNECTING
 * while it connects, FAILED with its code when its attempt failed).
 */
export class KeyStoreConnections {
  private readonly connections = new Map<string, Connection>();
  /** The newest connectGeneration seen per store: a record read before a newer change must not undo it. */
  private readonly newest = new Map<string, number>();
  /**
   * Per store, its attempts and closings one after the other: a token closing while the
   * next connection to it opens would log that one out with it.
   */
  private readonly lanes = new Map<string, Promise<void>>();
  private readonly stopWatching: () => void;
  private closed = false;
  /** Set by the XKS client once it exists (EXTERNAL_KEY_STORE support). */
  xks: XksConnector | undefined;
  /**
   * Runs when a store's backend token has been opened, before the store shows CONNECTED
   * (app.ts: the reconciliation of that token). A failure is logged; the store connects.
   */
  onBackendOpened: ((customKeyStoreId: string, custody: KeyCustody) => Promise<void>) | undefined;

  constructor(
    private readonly store: MetadataStore,
    readonly sealer: SecretSealer,
    readonly backends: TokenBackends,
    private readonly log: Logger,
  ) {
    this.stopWatching = store.watchChanges?.((names) => void this.refresh(names === '*' ? '*' : customKeyStoresIn(names))) ?? (() => undefined);
  }

  stateOf(id: string): { state: ConnectionStateType; errorCode?: ConnectionErrorCodeType } {
    const c = this.connections.get(id);
    return c ? { state: c.state, ...(c.errorCode ? { errorCode: c.errorCode } : {}) } : { state: 'DISCONNECTED' };
  }

  isConnected(id: string): boolean {
    return this.connections.get(id)?.state === 'CONNECTED';
  }

  /** The custody of a connected AWS_CLOUDHSM store's token. */
  custodyOf(id: string): KeyCustody | undefined {
    return this.isConnected(id) ? this.backends.custodyOf(id) : undefined;
  }

  /**
   * Brings this process's connection to what the record asks for: connected (a new attempt
   * for a newer generation, even over a connection or failure of an older one) or closed.
   * A record older than one already seen changes nothing. The state changes at once; the
   * work it starts is what `settled` waits for.
   */
  converge(record: CustomKeyStoreRecord, requestId = 'p11kms-converge'): void {
    const id = record.customKeyStoreId;
    const generation = record.connectGeneration ?? 0;
    if (this.closed || generation < (this.newest.get(id) ?? 0)) return;
    this.newest.set(id, generation);
    const current = this.connections.get(id);
    if (!record.connectRequested) {
      if (current) this.disconnect(id);
    } else if (current?.generation !== generation) {
      if (current) this.disconnect(id);
      this.connect(record, generation, requestId);
    }
  }

  /** The backend tokens of the AWS_CLOUDHSM stores that are CONNECTED in this process. */
  connectedBackends(): Array<{ customKeyStoreId: string; clusterId: string; custody: KeyCustody }> {
    return [...this.connections.keys()].flatMap((id) => {
      const custody = this.custodyOf(id);
      const clusterId = this.backends.clusterOf(id);
      return custody && clusterId ? [{ customKeyStoreId: id, clusterId, custody }] : [];
    });
  }

  /** Resolves when this process's attempts and closings for the store, begun so far, have ended. */
  async settled(id: string): Promise<void> {
    await this.lanes.get(id);
  }

  /** Connects, in the background, every store whose owner asked to connect it (start-up). */
  async resume(): Promise<void> {
    for (const record of await this.store.listCustomKeyStores()) this.converge(record, 'p11kms-startup');
  }

  /** Waits for the attempts in flight (shutdown), then closes every backend token. */
  async close(): Promise<void> {
    this.closed = true;
    this.stopWatching();
    while (this.lanes.size > 0) await Promise.all(this.lanes.values());
    this.connections.clear();
    await this.backends.closeAll();
  }

  private connect(record: CustomKeyStoreRecord, generation: number, requestId: string): void {
    const id = record.customKeyStoreId;
    const connection: Connection = { state: 'CONNECTING', generation };
    this.connections.set(id, connection);
    this.inLane(id, async () => {
      // A Disconnect, or a newer Connect, before or during the attempt wins.
      if (this.connections.get(id) !== connection) return;
      const outcome = await this.tryConnect(record, requestId).catch((err: unknown) => {
        this.log.error({ customKeyStoreId: id, err: (err as Error).message }, 'custom key store connection failed');
        return { ok: false as const, code: 'INTERNAL_ERROR' as ConnectionErrorCodeType };
      });
      if (this.connections.get(id) !== connection) {
        if (outcome.ok) await this.backends.disconnect(id);
        return;
      }
      connection.state = outcome.ok ? 'CONNECTED' : 'FAILED';
      if (!outcome.ok) connection.errorCode = outcome.code;
      this.log.info({ customKeyStoreId: id, state: connection.state, errorCode: connection.errorCode }, 'custom key store connection');
    });
  }

  /** DISCONNECTED at once; the token closes once the operations running on it have finished. */
  private disconnect(id: string): void {
    this.connections.delete(id);
    this.inLane(id, async () => {
      await this.backends.disconnect(id);
      this.log.info({ customKeyStoreId: id }, 'custom key store disconnected');
    });
  }

  private inLane(id: string, work: () => Promise<void>): void {
    const run = (this.lanes.get(id) ?? Promise.resolve())
      .then(work)
      .catch((err: unknown) => this.log.error({ customKeyStoreId: id, err: (err as Error).message }, 'custom key store connection change failed'))
      .finally(() => {
        if (this.lanes.get(id) === run) this.lanes.delete(id);
      });
    this.lanes.set(id, run);
  }

  /** Follows changes made through any process: the named stores (or all) are read again. */
  private async refresh(changed: readonly string[] | '*'): Promise<void> {
    try {
      const ids = changed === '*' ? [...(await this.store.listCustomKeyStores()).map((c) => c.customKeyStoreId), ...this.connections.keys()] : changed;
      for (const id of new Set(ids)) {
        const record = await this.store.getCustomKeyStore(id);
        if (record) this.converge(record);
        else this.forget(id);
      }
    } catch (err) {
      this.log.warn({ err: (err as Error).message }, 'could not read custom key stores after a change; the next change or request reads them again');
    }
  }

  /** The store was deleted (ids are never reused): nothing read of it before may connect it again. */
  private forget(id: string): void {
    if (this.closed) return;
    this.newest.set(id, Infinity);
    if (this.connections.has(id)) this.disconnect(id);
  }

  private async tryConnect(record: CustomKeyStoreRecord, requestId: string): Promise<{ ok: true } | { ok: false; code: ConnectionErrorCodeType }> {
    if (record.type === 'AWS_CLOUDHSM') {
      const pin = await this.sealer.open(record.customKeyStoreId, record.sealedPassword!);
      const opened = await this.backends.connect(record.customKeyStoreId, record.cloudHsmClusterId!, pin);
      const custody = this.backends.custodyOf(record.customKeyStoreId);
      if (opened.ok && custody && this.onBackendOpened) {
        await this.onBackendOpened(record.customKeyStoreId, custody).catch((err: unknown) =>
          this.log.error({ customKeyStoreId: record.customKeyStoreId, err: (err as Error).message }, 'reconciliation of a backend token failed'),
        );
      }
      return opened;
    }
    if (!this.xks) return { ok: false, code: 'INTERNAL_ERROR' };
    const secret = await this.sealer.open(record.customKeyStoreId, record.xks!.sealedSecret);
    return this.xks.healthCheck(record, secret, requestId, 'ConnectCustomKeyStore');
  }
}
