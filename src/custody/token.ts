import * as fs from 'node:fs';
import * as pkcs11js from 'pkcs11js';
import type { Logger } from 'pino';
import { KmsError } from '../errors';
import type { HsmProfile } from './hsm-profile';
import { faultsFromEnvironment, withFaults } from './faults';
import { heldInToken } from './key-templates';
import { ObjectLookup } from './object-lookup';
import { CRYPTO_THREAD_FILE, CryptoThreads, withCryptoThreads } from './crypto-threads';
import { SEARCH_THREAD_FILE, searchOnThread, SearchWorker, withSearchThread } from './search-worker';
import { ckrName, recoveryFor, toKmsError } from './pkcs11-errors';
import { SessionCopies } from './session-copies';
import { type Session, SessionPool } from './session-pool';
import { removeUnfinishedObjectFiles } from './softhsm2-files';
import { withTokenLock } from './startup-lock';
import { ObjectWrites } from './object-writes';
import { mechanismNumbers, withSynchronousMechanisms } from './synchronous-calls';
import { ThreadsAhead } from './token-threads';
import { describeToken, findOrInitializeToken, libraryParametersOf, type ModuleUser, openLoggedInSession, Pkcs11Modules, prepareSoftHsmConf, tokenDirOf, type TokenDescription, TokenOpenError } from './token-module';
import { observed } from './timed-calls';

export type { Session };
export type ObjectHandle = Buffer;

/** PKCS#11 3.0; pkcs11js (2.40) has no constant for it. */
const CKM_AES_KEY_WRAP_KWP = 0x210b;
const CKS_RO_USER_FUNCTIONS = 1;
const CKS_RW_USER_FUNCTIONS = 3;

/** Receives the duration of every PKCS#11 call (metrics); must not throw. */
export interface TokenObserver {
  call(pkcs11Function: string, seconds: number, failed: boolean): void;
  shed(): void;
}

export interface RunOptions {
  /**
   * false: wait for a session even when the queue is full (an operation's runs after its first
   * and clean-ups are never shed: the operation was admitted).
   */
  mayShed?: boolean;
  /**
   * The service's own duty (signing an audit digest): runs on a session of its own, never
   * behind operations waiting for the pool. A digest holds the audit trail's writes, and so
   * every answer, while it runs: waiting behind a standing queue there stalled every request
   * for the queue's standing time, once per digest, exactly while the service was overloaded.
   */
  serviceDuty?: boolean;
  /**
   * Runs before the operation is tried again after a failure. Creations use it to destroy
   * whatever a failed attempt may have left under their creation id, so a retry never makes
   * a second object with the same id.
   */
  beforeRetry?: (session: Session) => void | Promise<void>;
  /**
   * A listing of every token object: its time grows with the token (a search, then reads of
   * each object: over 30 s with 100,000 objects on a busy 2-core machine), so the call
   * deadline does not apply. On the event loop no deadline could fire during one either.
   */
  listing?: boolean;
}

export interface TokenOptions {
  /** Metrics: every call's duration, every shed request. */
  observer?: TokenObserver;
  /** A token call that has not answered after this long fails the request (DependencyTimeoutException). */
  callTimeoutMs?: number;
  /**
   * No other process can use the token now (the caller holds the data directory's lock): an
   * embedded SoftHSM2 token's object files a crash left unfinished are removed before it is
   * loaded (softhsm2-files.ts).
   */
  exclusive?: boolean;
  /** Threads booted for this token before it opened (Token.bootThreads); open adopts them. */
  threadsAhead?: ThreadsAhead;
  /** The refusal of work arriving once the token is closed (default: the service is shutting down). */
  closedError?: () => KmsError;
}

/** Runs of one token operation: the first, then up to two after recovering (see run). */
const RUN_ATTEMPTS = 3;

/** The call outlived the deadline; its session stays with it until it answers. */
class HungCall extends Error {
  /** Settles once the call has answered, whichever way. */
  constructor(readonly answered: Promise<void>) {
    super('a token call outlived its deadline');
  }
}

/**
 * One PKCS#11 module, one token, a pool of logged-in sessions. The module is initialised
 * once per process with CKF_OS_LOCKING_OK (SoftHSM2 crashes under concurrency without it),
 * and a keep-alive session is held for the lifetime so the login survives pool churn.
 * Every operation runs on a session of its own; a session whose call failed is discarded,
 * because Cryptoki 2.40 has no way to cancel a half-finished operation.
 */
export class Token implements ModuleUser {
  private readonly sessions: SessionPool;
  /** One session for serviceDuty runs, outside the pool's limit and queue. */
  private readonly dutySessions: SessionPool;
  private recovering: Promise<void> | undefined;
  /** Sessions handed out and not yet back (the module can be re-initialised only at zero). */
  private inUse = 0;
  private readonly drained: Array<() => void> = [];
  /** Calls past their deadline that have not answered yet: the module cannot be finalised under them. */
  private hungCalls = 0;
  private closed = false;
  private holds = 0;
  private readonly description: TokenDescription;
  /** Mechanisms the token offers (C_GetMechanismList at start-up). */
  readonly mechanisms: ReadonlySet<number>;
  /** AES key wrap with padding as RFC 5649 defines it, whatever this token calls it. */
  readonly rfc5649: number;
  /** The attributes that keep a persistent secret in this token (heldInToken). */
  readonly heldInToken: readonly pkcs11js.Attribute[];
  /** Profile `sessionCopies`: the objects operations compute with. */
  private readonly copies: SessionCopies | undefined;
  /** Finding the token's objects (handles cached per module instance). */
  readonly lookup: ObjectLookup;
  /** Object files found finished by removeCrashRemnants, with the time they were written. */
  private readonly finishedObjectFiles = new Map<string, number>();
  /** Lookups that have had their one module re-initialisation (see run). */
  private readonly reloadedFor = new Set<string>();
  /** Module instances this token has seen go (dropSessions): a lookup that missed in an earlier one is tried again. */
  private moduleGeneration = 0;

  private constructor(
    readonly pkcs11: pkcs11js.PKCS11,
    private slot: Buffer,
    private keepAlive: Session,
    readonly profile: HsmProfile,
    private readonly log: Logger,
    private readonly dataDir: string,
    private readonly options: TokenOptions,
    private readonly modules: Pkcs11Modules,
    /** Profile quirk lookupsCorruptObjectsBeingWritten: creations in flight, which lookups wait out. */
    private readonly writes?: ObjectWrites,
    /** Profile searchesOffEventLoop: the thread token searches run on. */
    private readonly searchThread?: SearchWorker,
    /** Profile cryptoThreads: the threads one-shot asymmetric calls run on, C_xInit included. */
    private readonly cryptoThreads?: CryptoThreads,
  ) {
    const openSession = () => {
      try {
        return pkcs11.C_OpenSession(this.slot, pkcs11js.CKF_SERIAL_SESSION | pkcs11js.CKF_RW_SESSION);
      } catch (err) {
        throw toKmsError(err, 'C_OpenSession');
      }
    };
    this.sessions = new SessionPool(profile, openSession, (session) => this.safeClose(session), options.observer && (() => options.observer!.shed()), log);
    const unbounded = Number.POSITIVE_INFINITY;
    this.dutySessions = new SessionPool({ sessionPoolSize: 1, sessionQueueLimit: unbounded, sessionQueueMaxWaitMs: unbounded }, openSession, (session) => this.safeClose(session), undefined, log);
    this.mechanisms = new Set(pkcs11.C_GetMechanismList(slot));
    this.description = describeToken(pkcs11, slot);
    this.rfc5649 = profile.quirks.rfc5649Mechanism === 'CKM_AES_KEY_WRAP_KWP' ? CKM_AES_KEY_WRAP_KWP : pkcs11js.CKM_AES_KEY_WRAP_PAD;
    this.heldInToken = heldInToken(profile.sessionCopies === true);
    this.copies = profile.sessionCopies ? new SessionCopies(pkcs11, () => this.keepAlive, log) : undefined;
    // On the search thread, once no creation is in flight on a token whose searches must not meet one.
    const offLoop = (thread: SearchWorker) => (template: pkcs11js.Template, read?: number[]) =>
      thread.unlessReinitialised(() => (writes ? writes.searching(() => searchOnThread(pkcs11, this.slot, template, read)) : searchOnThread(pkcs11, this.slot, template, read)));
    this.lookup = new ObjectLookup(pkcs11, this.copies, log, writes, searchThread && offLoop(searchThread));
    modules.join(profile.module, this);
  }

  /** Whether keys made now must be copyable (profile `sessionCopies`); templates read heldInToken. */
  get copiesKeys(): boolean {
    return this.copies !== undefined;
  }

  /**
   * Opens the token under the token lock (one process at a time initialises and logs in;
   * see withTokenLock). `whileLocked` runs before the lock is released, for first-start
   * objects every process shares (the audit signing key).
   */
  static async openShared<T>(
    profile: HsmProfile,
    dataDir: string,
    log: Logger,
    options: TokenOptions,
    whileLocked: (token: Token) => Promise<T>,
    modules: Pkcs11Modules = new Pkcs11Modules(),
  ): Promise<{ token: Token; extra: T }> {
    return withTokenLock(dataDir, async () => {
      const token = Token.open(profile, dataDir, log, options, modules);
      try {
        return { token, extra: await whileLocked(token) };
      } catch (err) {
        token.close();
        throw err;
      }
    });
  }

  /**
   * Boots the threads the profile's token will run calls on (searchesOffEventLoop, the first of
   * its cryptoThreads) before the token is opened: open (options.threadsAhead) adopts them.
   * They touch the module only with their first call. The caller closes what is returned once
   * the token is open (or failed to open): threads nobody adopted end then.
   */
  static bootThreads(profile: HsmProfile, dataDir: string): ThreadsAhead {
    const ahead = new ThreadsAhead();
    const setup = { module: profile.module, libraryParameters: libraryParametersOf(profile, dataDir) };
    if (profile.searchesOffEventLoop) ahead.boot(SEARCH_THREAD_FILE, setup);
    if (usesCryptoThreads(profile)) ahead.boot(CRYPTO_THREAD_FILE, setup);
    return ahead;
  }

  /**
   * Opens the profile's token. `modules` is shared by every token of one process (the main
   * token and custom key store backends): two tokens behind one PKCS#11 library share its
   * single C_Initialize, and only the last to close may C_Finalize it.
   */
  static open(profile: HsmProfile, dataDir: string, log: Logger, options: TokenOptions = {}, modules: Pkcs11Modules = new Pkcs11Modules()): Token {
    if (profile.softhsm2ConfTemplate && !modules.isLoaded(profile.module)) {
      const tokensDir = prepareSoftHsmConf(profile.softhsm2ConfTemplate, dataDir);
      if (options.exclusive) removeUnfinishedObjectFiles(tokensDir, log);
    }
    if (!fs.existsSync(profile.module)) {
      throw new TokenOpenError('no-module', `PKCS#11 module not found at ${profile.module} (profile ${profile.name})`);
    }
    const threaded = mechanismNumbers(profile.cryptoThreadMechanisms ?? [], profile.name, 'cryptoThreadMechanisms');
    const loadedNow = !modules.isLoaded(profile.module);
    const module = modules.acquire(profile, dataDir);
    const pkcs11 = options.observer ? observed(module, options.observer) : module;
    const libraryParameters = libraryParametersOf(profile, dataDir);
    const cryptoThreads = usesCryptoThreads(profile) ? new CryptoThreads(profile.module, libraryParameters, profile.cryptoThreads!, options.observer, options.threadsAhead) : undefined;
    const searchThread = profile.searchesOffEventLoop ? new SearchWorker(pkcs11, profile.module, libraryParameters, options.threadsAhead) : undefined;
    // Started (or adopted from bootThreads) now, not with their first calls: each thread's
    // start-up (a new isolate, pkcs11js: ~65 ms) then runs beside the login and the audit
    // signer's start, which wait for both.
    searchThread?.warmUp();
    cryptoThreads?.warmUp();
    try {
      const slot = findOrInitializeToken(pkcs11, profile, log);
      if (loadedNow) modules.tokensFound(profile.module, dataDir);
      const keepAlive = openLoggedInSession(pkcs11, slot, profile.pin);
      log.info({ profile: profile.name, token: profile.tokenLabel }, 'token opened');
      if (profile.quirks.exportsNonExtractableKeys) {
        log.warn({ profile: profile.name }, 'this token exports keys marked non-extractable (C_WrapKey, C_CopyObject): anyone with the user PIN can take master keys out; for development and CI only');
      }
      const synchronous = mechanismNumbers(profile.synchronousMechanisms ?? [], profile.name);
      const synchronouslyRouted = synchronous.size > 0 ? withSynchronousMechanisms(pkcs11, synchronous) : pkcs11;
      const routed = cryptoThreads ? withCryptoThreads(synchronouslyRouted, cryptoThreads, threaded) : synchronouslyRouted;
      const writes = profile.quirks.lookupsCorruptObjectsBeingWritten ? new ObjectWrites() : undefined;
      const tracked = writes ? writes.tracking(routed) : routed;
      const direct = searchThread ? withSearchThread(tracked, searchThread, options.observer) : tracked;
      // Faults wrap the calls p11kms makes (C_EncryptAsync…), whichever way they then run.
      const faults = faultsFromEnvironment(process.env);
      const calls = faults ? withFaults(direct, faults, log) : direct;
      return new Token(calls, slot, keepAlive, profile, log, dataDir, options, modules, writes, searchThread, cryptoThreads);
    } catch (err) {
      searchThread?.close();
      cryptoThreads?.close();
      modules.release(profile.module);
      throw err;
    }
  }

  /**
   * Runs `fn` on a pooled session. After a failure the token can recover from (a stale cached
   * handle, a lost session, a broken module view, a transient device error: recoveryFor) it
   * recovers and runs `fn` again, up to RUN_ATTEMPTS runs in all; `options.beforeRetry` cleans
   * up first. A call that does not answer within the deadline fails the request at once with
   * DependencyTimeoutException and keeps its session until it answers.
   */
  async run<T>(what: string, fn: (session: Session) => Promise<T> | T, options: RunOptions = {}): Promise<T> {
    let reloaded: string | undefined;
    for (let attempt = 1; ; attempt++) {
      const pool = options.serviceDuty ? this.dutySessions : this.sessions;
      const session = await this.acquire(pool, options.serviceDuty !== true && (options.mayShed ?? true));
      const generation = this.moduleGeneration;
      let failure: unknown;
      let hung: HungCall | undefined;
      let missed: string | undefined;
      try {
        this.lookup.startOn(session);
        const lookingUp = this.writes ? (s: Session) => this.writes!.lookingUp(() => fn(s)) : fn;
        const searching = this.searchThread ? (s: Session) => this.lookup.searchAnswering(s, () => lookingUp(s)) : lookingUp;
        const value = await (options.listing ? Promise.resolve().then(() => searching(session)) : this.withDeadline(what, session, pool, searching));
        // Found again: a later hiding of it gets its re-initialisation too.
        if (reloaded) this.reloadedFor.delete(reloaded);
        return value;
      } catch (err) {
        failure = err;
        if (err instanceof HungCall) hung = err;
        missed = this.lookup.missOn(session);
      } finally {
        // The session goes back first: re-initialising waits for every session to return.
        if (!hung) this.release(pool, session, failure !== undefined);
      }
      if (failure instanceof KmsError) {
        const hidden = missed !== undefined && failure.name === 'KeyUnavailableException' && attempt < RUN_ATTEMPTS;
        // Another run re-initialises the module, or did since this attempt began: the miss may
        // be the old view's; tried again in the new one (acquire waits for it).
        if (hidden && (this.recovering || this.moduleGeneration !== generation)) continue;
        if (!(hidden && this.firstReloadFor(missed!))) throw failure;
        // SoftHSM2 2.6.1 hides an object it read half-written until the module is initialised
        // again (../shared/softhsm2-notes.md). Once per lookup until it is found again: material
        // really gone costs one re-initialisation, not one per request. Any attempt but the last
        // may ask (a stale cached handle makes the second run search); reinitialise drains first.
        this.log.warn({ what, object: missed, attempt }, 'a token object the operation needs was not found; re-initialising the module view and trying again');
        reloaded = missed;
        await this.recover();
        continue;
      }
      if (hung) {
        throw new KmsError('DependencyTimeoutException', 'The key store did not respond in time. Try again.', {
          internalDetail: `${what}: no answer within ${this.options.callTimeoutMs} ms`,
          stillRunning: hung.answered,
        });
      }
      const recovery = recoveryFor(failure, attempt);
      if (recovery === 'none' || attempt >= RUN_ATTEMPTS) throw toKmsError(failure, what);
      this.log.warn({ what, ckr: ckrName(failure), attempt, recovery }, 'token call failed; recovering and trying again');
      // Session copies are this process's own session objects: no other process or token
      // object churn can invalidate their handles, and destroying them here would fail every
      // operation using one at this moment.
      if (recovery === 'handles') this.lookup.dropHandles();
      else if (recovery === 'module' || recovery === 'session') await this.recover();
      if (options.beforeRetry) await this.run(`${what}: clean-up before trying again`, options.beforeRetry, { mayShed: false });
    }
  }

  private firstReloadFor(lookup: string): boolean {
    if (this.reloadedFor.has(lookup)) return false;
    if (this.reloadedFor.size >= 10_000) this.reloadedFor.clear();
    this.reloadedFor.add(lookup);
    return true;
  }

  /**
   * Runs a call that makes a token object on the event loop (C_CopyObject, C_CreateObject,
   * the synchronous generations) once no search runs off the loop that it could race
   * (ObjectWrites.creatingOnLoop); at once on other tokens.
   */
  async creatingOnLoop<T>(call: () => T): Promise<T> {
    return this.writes && this.searchThread ? this.writes.creatingOnLoop(call) : call();
  }

  /** Runs `fn`, giving up on it after the call deadline; a hung call keeps its session until it answers. */
  private withDeadline<T>(what: string, session: Session, pool: SessionPool, fn: (session: Session) => Promise<T> | T): Promise<T> {
    const work = Promise.resolve().then(() => fn(session));
    const limit = this.options.callTimeoutMs;
    if (!limit) return work;
    return new Promise<T>((resolve, reject) => {
      const timer = setTimeout(() => {
        // Out of the pool until the call answers; its slot is free for others meanwhile.
        this.writes?.abandon(session);
        this.hungCalls++;
        this.returned();
        pool.abandon(!this.closed);
        const answered = work.then(
          () => undefined,
          () => undefined,
        );
        void answered.then(() => {
          this.hungCalls--;
          this.safeClose(session);
          this.log.warn({ what }, 'a token call answered after its deadline');
        });
        reject(new HungCall(answered));
      }, limit);
      work.then(
        (value) => {
          clearTimeout(timer);
          resolve(value);
        },
        (err: unknown) => {
          clearTimeout(timer);
          reject(err);
        },
      );
    });
  }

  /**
   * Closes every session and finalizes the module. Call only once no operation is in
   * flight (the service closes its HTTP server first): finalizing under running native
   * work crashes the process.
   */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.sessions.closeIdle();
    this.dutySessions.closeIdle();
    this.safeClose(this.keepAlive);
    this.searchThread?.close();
    // Finalising under a call that never answered would crash the process; exiting frees it.
    if (this.hungCalls > 0 || this.searchThread?.busy || this.cryptoThreads?.busy) return;
    this.cryptoThreads?.close();
    this.modules.release(this.profile.module, this);
  }

  /**
   * What the device says about itself (health reports), as read when the token was opened:
   * SoftHSM2 2.6.1 reads its token file for C_GetTokenInfo, and a process that does so while
   * another logs in can lose its view of the token for good (../shared/softhsm2-notes.md).
   */
  describe(): TokenDescription {
    return this.description;
  }

  /**
   * An embedded SoftHSM2 token's object files a crash left unfinished and nobody has written
   * for `olderThanMs` (softhsm2-files.ts); other tokens create objects atomically. Returns how
   * many went.
   */
  removeCrashRemnants(olderThanMs: number): number {
    if (!this.profile.softhsm2ConfTemplate) return 0;
    return removeUnfinishedObjectFiles(tokenDirOf(this.dataDir), this.log, { olderThanMs, finished: this.finishedObjectFiles });
  }

  /** Sessions currently running an operation. */
  get busy(): number {
    return this.sessions.busy + this.dutySessions.busy;
  }

  /**
   * Keeps the token open for work spanning several calls and store transactions (a creation:
   * the object, then its record or its removal): TokenBackends.disconnect waits for every
   * hold. Undefined once the token is closed.
   */
  hold(): (() => void) | undefined {
    if (this.closed) return undefined;
    this.holds++;
    let released = false;
    return () => {
      if (!released) this.holds--;
      released = true;
    };
  }

  /** Holds not yet released (see hold). */
  get held(): number {
    return this.holds;
  }

  /** Sessions busy and operations waiting for one (metrics, readiness). */
  usage(): { size: number; inUse: number; waiting: number; oldestWaitMs: number } {
    return this.sessions.usage();
  }

  /** The duty session's (serviceDuty runs), beside the pool: a session the token must allow too (metrics). */
  dutyUsage(): { size: number; inUse: number; waiting: number } {
    return this.dutySessions.usage();
  }

  /** Whether the keep-alive session is still logged in (readiness); never throws. */
  loggedIn(): boolean {
    if (this.closed) return false;
    try {
      const state = this.pkcs11.C_GetSessionInfo(this.keepAlive).state;
      return state === CKS_RO_USER_FUNCTIONS || state === CKS_RW_USER_FUNCTIONS;
    } catch {
      return false;
    }
  }

  private async acquire(pool: SessionPool, mayShed: boolean): Promise<Session> {
    while (this.recovering) await this.recovering.catch(() => undefined);
    if (this.closed) throw this.options.closedError?.() ?? new KmsError('KMSInternalException', 'The key store is shutting down.');
    const session = await pool.take(mayShed);
    this.inUse++;
    return session;
  }

  private returned(): void {
    this.inUse--;
    if (this.inUse === 0) for (const resolve of this.drained.splice(0)) resolve();
  }

  private release(pool: SessionPool, session: Session, discard: boolean): void {
    this.returned();
    // While the module is re-initialised, waiters are served once it is back (pause).
    if (discard || this.closed || this.recovering) pool.discard(session, !this.closed && !this.recovering);
    else pool.give(session);
  }

  /**
   * Re-initialises the module for every token using it (Pkcs11Modules.reinitialise): this
   * heals a lost connection and SoftHSM2's broken view alike. New requests wait meanwhile
   * rather than fail.
   */
  private async recover(): Promise<void> {
    const how = await this.modules.reinitialise(this.profile.module, this.dataDir, this.log, this.pkcs11);
    this.log.info(how === 'module' ? 'token module re-initialised' : 'token sessions re-established (a call is still hung: module kept)');
  }

  /** ModuleUser: no new calls until the module is back, and none of ours running in it. */
  async pause(resumed: Promise<void>): Promise<boolean> {
    this.recovering = resumed;
    void resumed.then(() => {
      if (this.recovering === resumed) this.recovering = undefined;
      if (this.closed) return;
      this.sessions.wake();
      this.dutySessions.wake();
    });
    if (this.inUse > 0) await new Promise<void>((resolve) => this.drained.push(resolve));
    return this.hungCalls > 0;
  }

  /** ModuleUser: the pool's sessions, cached handles and session copies belong to the module instance that is going. */
  dropSessions(): void {
    this.moduleGeneration++;
    this.sessions.closeIdle();
    this.dutySessions.closeIdle();
    // Session copies live in the keep-alive session: closing it destroys them.
    this.lookup.dropAll();
    this.safeClose(this.keepAlive);
    this.searchThread?.dropSession();
  }

  /** ModuleUser: the token again (its slot may have moved) and a logged-in keep-alive session. */
  reopen(): void {
    if (this.closed) return;
    this.slot = findOrInitializeToken(this.pkcs11, { ...this.profile, initializeToken: false }, this.log);
    this.keepAlive = openLoggedInSession(this.pkcs11, this.slot, this.profile.pin);
  }

  private safeClose(session: Session): void {
    try {
      this.pkcs11.C_CloseSession(session);
    } catch {
      // Already closed or the device went away; nothing left to release.
    }
  }
}

/** Whether the profile runs some one-shot calls on crypto threads (cryptoThreads, cryptoThreadMechanisms). */
function usesCryptoThreads(profile: HsmProfile): boolean {
  return (profile.cryptoThreads ?? 0) > 0 && (profile.cryptoThreadMechanisms ?? []).length > 0;
}
