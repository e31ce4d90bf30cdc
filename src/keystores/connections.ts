import type { Logger } from 'pino';
import type { KeyCustody } from '../custody/key-custody';
import type { SecretSealer } from '../custody/secret-sealer';
import type { TokenBackends } from '../custody/token-backends';
import type { ConnectionErrorCodeType, ConnectionStateType } from '../model/generated/types';
import type { MetadataStore } from '../store/metadata-store';
import type { CustomKeyStoreRecord } from '../store/records';

/** What connecting to an external key store needs: the XKS health check (src/keystores/xks-client.ts). */
export interface XksConnector {
  healthCheck(store: CustomKeyStoreRecord, secret: string, requestId: string, operation: string): Promise<{ ok: true } | { ok: false; code: ConnectionErrorCodeType }>;
}

interface Connection {
  state: ConnectionStateType;
  errorCode?: ConnectionErrorCodeType;
  /** Resolves when a CONNECTING attempt has ended (tests and shutdown wait on it). */
  attempt?: Promise<void>;
}

/**
 * The connection state of every custom key store, held in memory (a store's ConnectionState
 * is about this process: its token sessions or its proxy). Connect is asynchronous as on
 * AWS: CONNECTING at once, then CONNECTED or FAILED with AWS's ConnectionErrorCode. Stores
 * whose owner asked to connect are connected again at start-up.
 */
export class KeyStoreConnections {
  private readonly connections = new Map<string, Connection>();
  /** Set by the XKS client once it exists (EXTERNAL_KEY_STORE support). */
  xks: XksConnector | undefined;

  constructor(
    private readonly store: MetadataStore,
    readonly sealer: SecretSealer,
    readonly backends: TokenBackends,
    private readonly log: Logger,
  ) {}

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

  /** Starts connecting; the outcome is visible through stateOf. */
  connect(record: CustomKeyStoreRecord, requestId: string): void {
    const connection: Connection = { state: 'CONNECTING' };
    this.connections.set(record.customKeyStoreId, connection);
    connection.attempt = (async () => {
      const outcome = await this.tryConnect(record, requestId).catch((err: unknown) => {
        this.log.error({ customKeyStoreId: record.customKeyStoreId, err: (err as Error).message }, 'custom key store connection failed');
        return { ok: false as const, code: 'INTERNAL_ERROR' as ConnectionErrorCodeType };
      });
      // A Disconnect during the attempt wins.
      if (this.connections.get(record.customKeyStoreId) !== connection) {
        if (outcome.ok) await this.backends.disconnect(record.customKeyStoreId);
        return;
      }
      connection.state = outcome.ok ? 'CONNECTED' : 'FAILED';
      if (!outcome.ok) connection.errorCode = outcome.code;
      this.log.info({ customKeyStoreId: record.customKeyStoreId, state: connection.state, errorCode: connection.errorCode }, 'custom key store connection');
    })();
  }

  async disconnect(id: string): Promise<void> {
    this.connections.delete(id);
    await this.backends.disconnect(id);
  }

  /** Reconnects, in the background, every store whose owner asked to connect it. */
  async resume(): Promise<void> {
    for (const record of await this.store.listCustomKeyStores()) {
      if (record.connectRequested) this.connect(record, 'p11kms-startup');
    }
  }

  /** Waits for the attempts in flight (shutdown), then closes every backend token. */
  async close(): Promise<void> {
    await Promise.all([...this.connections.values()].map((c) => c.attempt));
    this.connections.clear();
    await this.backends.closeAll();
  }

  private async tryConnect(record: CustomKeyStoreRecord, requestId: string): Promise<{ ok: true } | { ok: false; code: ConnectionErrorCodeType }> {
    if (record.type === 'AWS_CLOUDHSM') {
      const pin = await this.sealer.open(record.customKeyStoreId, record.sealedPassword!);
      return this.backends.connect(record.customKeyStoreId, record.cloudHsmClusterId!, pin);
    }
    if (!this.xks) return { ok: false, code: 'INTERNAL_ERROR' };
    const secret = await this.sealer.open(record.customKeyStoreId, record.xks!.sealedSecret);
    return this.xks.healthCheck(record, secret, requestId, 'ConnectCustomKeyStore');
  }
}
