import type { Logger } from 'pino';
import { KmsError } from '../errors';
import type { HsmProfile } from './hsm-profile';
import { KeyCustody } from './key-custody';
import { withTokenLock } from './startup-lock';
import { Token } from './token';
import { type Pkcs11Modules, TokenOpenError } from './token-module';

/** AWS's ConnectionErrorCode values a token backend can produce. */
export type BackendConnectionError = 'CLUSTER_NOT_FOUND' | 'INVALID_CREDENTIALS' | 'USER_LOCKED_OUT' | 'INTERNAL_ERROR' | 'NETWORK_ERRORS';

/**
 * The tokens custom key stores of type AWS_CLOUDHSM use: configured backends (cluster id →
 * HSM profile), each opened with its own session pool when a store connects and closed
 * when it disconnects. One instance per service; tokens of one PKCS#11 library share its
 * initialisation through `modules`.
 */
export class TokenBackends {
  private readonly open = new Map<string, { token: Token; custody: KeyCustody; clusterId: string }>();

  constructor(
    private readonly profiles: Readonly<Record<string, HsmProfile>>,
    private readonly dataDir: string,
    private readonly modules: Pkcs11Modules,
    private readonly log: Logger,
  ) {}

  has(clusterId: string): boolean {
    return Object.prototype.hasOwnProperty.call(this.profiles, clusterId);
  }

  /**
   * Whether two backends hold the same keys (AWS: clusters sharing a backup lineage): the
   * same module and token label, or the same `clusterLineage` in both profiles (replicated
   * partitions of one HSM family).
   */
  related(a: string, b: string): boolean {
    if (this.sameToken(a, b)) return true;
    const lineage = this.profiles[a]?.clusterLineage;
    return lineage !== undefined && lineage === this.profiles[b]?.clusterLineage;
  }

  /** Whether two backends name one token (same module and token label): its objects are both's. */
  sameToken(a: string, b: string): boolean {
    const pa = this.profiles[a];
    const pb = this.profiles[b];
    return !!pa && !!pb && pa.module === pb.module && pa.tokenLabel === pb.tokenLabel;
  }

  /**
   * Logs in to the backend's token with the store's PIN. Returns the AWS connection error
   * code on failure; the PIN is never logged. Under the token lock: every process of a
   * cluster connects a store at once, and SoftHSM2's logins must not overlap (startup-lock.ts).
   */
  async connect(holder: string, clusterId: string, pin: string): Promise<{ ok: true } | { ok: false; code: BackendConnectionError }> {
    const profile = this.profiles[clusterId];
    if (!profile) return { ok: false, code: 'CLUSTER_NOT_FOUND' };
    if (this.open.has(holder)) return { ok: true };
    try {
      // Work reaching the token after its store was disconnected finds the key unavailable, as AWS answers.
      const options = { closedError: () => new KmsError('KMSInvalidStateException', `Custom key store ${holder} was disconnected.`) };
      const open = () => withTokenLock(this.dataDir, () => Token.open({ ...profile, pin }, this.dataDir, this.log, options, this.modules));
      const token = await open().catch(async (err: unknown) => {
        // A SoftHSM2 token made while the service runs is in no slot until the module, shared
        // with the tokens serving requests, is initialised again (outside the lock: it takes it).
        if (!(err instanceof TokenOpenError && err.reason === 'no-token' && (await this.modules.rereadSlots(profile.module, this.dataDir, this.log)))) throw err;
        return open();
      });
      this.open.set(holder, { token, custody: new KeyCustody(token), clusterId });
      return { ok: true };
    } catch (err) {
      const reason = err instanceof TokenOpenError ? err.reason : 'device';
      this.log.warn({ customKeyStoreId: holder, clusterId, reason, err: (err as Error).message }, 'custom key store could not open its token');
      const code: Record<string, BackendConnectionError> = {
        'no-module': 'CLUSTER_NOT_FOUND',
        'no-token': 'CLUSTER_NOT_FOUND',
        'wrong-pin': 'INVALID_CREDENTIALS',
        locked: 'USER_LOCKED_OUT',
        device: 'INTERNAL_ERROR',
      };
      return { ok: false, code: code[reason] ?? 'INTERNAL_ERROR' };
    }
  }

  custodyOf(holder: string): KeyCustody | undefined {
    return this.open.get(holder)?.custody;
  }

  /** The cluster id the holder's token was opened for. */
  clusterOf(holder: string): string | undefined {
    return this.open.get(holder)?.clusterId;
  }

  /**
   * Closes the holder's token once the operations running on it, and the creations holding
   * it (Token.hold), have finished: closing a session under running native work crashes the
   * process, and a creation's object must be recorded or destroyed.
   */
  async disconnect(holder: string): Promise<void> {
    const entry = this.open.get(holder);
    if (!entry) return;
    this.open.delete(holder);
    while (entry.token.busy > 0 || entry.token.held > 0) await new Promise((resolve) => setTimeout(resolve, 10));
    entry.token.close();
  }

  async closeAll(): Promise<void> {
    for (const holder of [...this.open.keys()]) await this.disconnect(holder);
  }
}
