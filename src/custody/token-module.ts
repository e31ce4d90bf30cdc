import * as fs from 'node:fs';
import * as path from 'node:path';
import * as pkcs11js from 'pkcs11js';
import type { Logger } from 'pino';
import type { HsmProfile } from './hsm-profile';
import { ckrName } from './pkcs11-errors';
import { withTokenLock } from './startup-lock';

/**
 * Loading a PKCS#11 library, finding (or, for SoftHSM2, initialising) the profile's token and
 * logging in: what Token.open and token recovery need before any session exists.
 */

type Session = Buffer;

const TOKEN_LABEL_BYTES = 32;

/** Why a token could not be opened, for callers that report it (custom key store connection errors). */
export type TokenOpenFailure = 'no-module' | 'no-token' | 'wrong-pin' | 'locked' | 'device';

export class TokenOpenError extends Error {
  constructor(
    readonly reason: TokenOpenFailure,
    message: string,
  ) {
    super(message);
  }
}

/**
 * What a module re-initialisation needs from each token using the module. C_Finalize ends
 * every session of every token behind the library, and the module hands out session and
 * object handles from 1 again afterwards: a token that kept its old handles would reach
 * another token's sessions and objects. So all of them pause, drop and reopen together.
 */
export interface ModuleUser {
  /** Takes no new calls until `resumed` settles; resolves once none of its calls runs in the module, true if one is hung there. */
  pause(resumed: Promise<void>): Promise<boolean>;
  /** Closes its sessions and forgets its handles and session copies: they belong to the module instance that is going. */
  dropSessions(): void;
  /** Finds its token again and logs a new keep-alive session in. */
  reopen(): void;
}

/** How a re-initialisation went: the module finalised and initialised, or only sessions renewed (a call is hung in it). */
export type Reinitialisation = 'module' | 'sessions';

interface LoadedModule {
  pkcs11: pkcs11js.PKCS11;
  profile: HsmProfile;
  users: Set<ModuleUser>;
  reinitialising?: Promise<Reinitialisation>;
  /** Embedded SoftHSM2: its token directories as of the last C_Initialize (SoftHSM2 reads its slots then only). */
  tokensSeen?: string;
}

/**
 * The PKCS#11 libraries one process has loaded and the tokens using each. Each library is
 * initialised once (CKF_OS_LOCKING_OK: SoftHSM2 crashes under concurrency without it),
 * re-initialised for all its tokens at once (reinitialise), and finalised when its last
 * token closes.
 */
export class Pkcs11Modules {
  private readonly loaded = new Map<string, LoadedModule>();

  isLoaded(module: string): boolean {
    return this.loaded.has(module);
  }

  acquire(profile: HsmProfile, dataDir: string): pkcs11js.PKCS11 {
    const entry = this.loaded.get(profile.module);
    if (entry) return entry.pkcs11;
    const pkcs11 = new pkcs11js.PKCS11();
    pkcs11.load(profile.module);
    const tokensSeen = embeddedTokensOf(profile, dataDir);
    initializeModule(pkcs11, profile, dataDir);
    // Keep the module referenced for the process lifetime: if it is garbage-collected
    // the library is unloaded under running work.
    retainedModules.push(pkcs11);
    this.loaded.set(profile.module, { pkcs11, profile, users: new Set(), tokensSeen });
    return pkcs11;
  }

  /**
   * The module was just loaded for the token that found (or, at a first start, initialised) its
   * token: the directory as it is now is what the module knows (its own C_InitToken included).
   */
  tokensFound(module: string, dataDir: string): void {
    const entry = this.loaded.get(module);
    if (entry) entry.tokensSeen = embeddedTokensOf(entry.profile, dataDir);
  }

  /**
   * A token was looked for and not found: if the module is the embedded SoftHSM2 and a token
   * was made in its directory since its last C_Initialize (softhsm2-util --init-token while
   * the service runs: SoftHSM2 reads its slot list at C_Initialize only), re-initialises it
   * for every token using it (reinitialise: each pauses until its running calls return) so
   * the slot list includes the new one. True when the module was initialised again. Only on
   * a change in the directory: a token that is really absent costs no re-initialisation.
   */
  async rereadSlots(module: string, dataDir: string, log: Logger): Promise<boolean> {
    const entry = this.loaded.get(module);
    if (!entry?.profile.softhsm2ConfTemplate || embeddedTokensOf(entry.profile, dataDir) === entry.tokensSeen) return false;
    log.info({ module }, 'a token was made in the token directory since the module was initialised; re-initialising it to read its slots again');
    return (await this.reinitialise(module, dataDir, log)) === 'module';
  }

  /** `user` computes with the module acquired for its profile until it calls release. */
  join(module: string, user: ModuleUser): void {
    this.loaded.get(module)?.users.add(user);
  }

  /** Finalises the module once no token uses it (a token that failed to open never joined). */
  release(module: string, user?: ModuleUser): void {
    const entry = this.loaded.get(module);
    if (!entry) return;
    if (user) entry.users.delete(user);
    if (entry.users.size > 0) return;
    this.loaded.delete(module);
    try {
      entry.pkcs11.C_Finalize();
    } catch {
      // Already finalized; nothing to release.
    }
  }

  /**
   * Finalises and initialises the module again for every token using it, once however many
   * ask at the same time: each pauses until its running calls return, then all drop their
   * sessions and handles, and all log in again, under the token lock (SoftHSM2's broken view
   * and a lost device connection both heal this way: ../shared/softhsm2-notes.md). With a
   * call hung in the module, finalising would crash the process: sessions are renewed only.
   * `calls` is the asking token's view of the module, so its wrappers (faults, timings) see
   * the C_Finalize and C_Initialize.
   */
  reinitialise(module: string, dataDir: string, log: Logger, calls?: pkcs11js.PKCS11): Promise<Reinitialisation> {
    const entry = this.loaded.get(module);
    if (!entry) return Promise.resolve('sessions');
    entry.reinitialising ??= (async () => {
      let resume!: () => void;
      const resumed = new Promise<void>((resolve) => (resume = resolve));
      try {
        const users = [...entry.users];
        const hung = (await Promise.all(users.map((user) => user.pause(resumed)))).some(Boolean);
        return await withTokenLock(dataDir, () => {
          for (const user of users) user.dropSessions();
          if (!hung) {
            const module = calls ?? entry.pkcs11;
            try {
              module.C_Finalize();
            } catch {
              // Already finalized.
            }
            entry.tokensSeen = embeddedTokensOf(entry.profile, dataDir);
            initializeModule(module, entry.profile, dataDir);
          }
          const failures: unknown[] = [];
          for (const user of users) {
            try {
              user.reopen();
            } catch (err) {
              // That token's next call fails and asks again; the others go on.
              failures.push(err);
              log.error({ err: (err as Error).message }, 'a token could not log in again after the module was re-initialised');
            }
          }
          if (failures.length === users.length && failures.length > 0) throw failures[0];
          return hung ? 'sessions' : 'module';
        });
      } finally {
        entry.reinitialising = undefined;
        resume();
      }
    })();
    return entry.reinitialising;
  }
}

const retainedModules: pkcs11js.PKCS11[] = [];

/** The profile's initialisation string for C_Initialize, with its token directory filled in. */
export function libraryParametersOf(profile: HsmProfile, dataDir: string): string | undefined {
  return profile.moduleParameters?.replaceAll('@TOKEN_DIR@', tokenDirOf(dataDir));
}

export function initializeModule(pkcs11: pkcs11js.PKCS11, profile: HsmProfile, dataDir: string): void {
  const libraryParameters = libraryParametersOf(profile, dataDir);
  try {
    pkcs11.C_Initialize({
      flags: pkcs11js.CKF_OS_LOCKING_OK,
      ...(libraryParameters ? { libraryParameters } : {}),
    });
  } catch (err) {
    if (ckrName(err) !== 'CKR_CRYPTOKI_ALREADY_INITIALIZED') throw err;
  }
}

export function openLoggedInSession(pkcs11: pkcs11js.PKCS11, slot: Buffer, pin: string): Session {
  const session = pkcs11.C_OpenSession(slot, pkcs11js.CKF_SERIAL_SESSION | pkcs11js.CKF_RW_SESSION);
  try {
    pkcs11.C_Login(session, pkcs11js.CKU_USER, pin);
  } catch (err) {
    const name = ckrName(err);
    if (name !== 'CKR_USER_ALREADY_LOGGED_IN') {
      pkcs11.C_CloseSession(session);
      if (name === 'CKR_PIN_INCORRECT' || name === 'CKR_PIN_LEN_RANGE') throw new TokenOpenError('wrong-pin', 'PKCS#11 login failed: wrong PIN');
      if (name === 'CKR_PIN_LOCKED') throw new TokenOpenError('locked', 'PKCS#11 login failed: the PIN is locked');
      throw new TokenOpenError('device', `PKCS#11 login failed: ${name ?? (err as Error).message}`);
    }
  }
  return session;
}

export function tokenLabelOf(pkcs11: pkcs11js.PKCS11, slot: Buffer): string {
  return trimPadding(pkcs11.C_GetTokenInfo(slot).label);
}

/** What the device says about itself (health reports). */
export interface TokenDescription {
  label: string;
  manufacturer: string;
  model: string;
  serialNumber: string;
}

export function describeToken(pkcs11: pkcs11js.PKCS11, slot: Buffer): TokenDescription {
  const info = pkcs11.C_GetTokenInfo(slot);
  return { label: trimPadding(info.label), manufacturer: trimPadding(info.manufacturerID), model: trimPadding(info.model), serialNumber: trimPadding(info.serialNumber) };
}

/** PKCS#11 pads its fixed-length text fields with blanks (some tokens with NULs). */
function trimPadding(text: string): string {
  return text.replace(/[\s\0]+$/, '');
}

export function findOrInitializeToken(pkcs11: pkcs11js.PKCS11, profile: HsmProfile, log: Logger): Buffer {
  const slots = pkcs11.C_GetSlotList(true);
  const existing = slots.find((slot) => {
    const info = pkcs11.C_GetTokenInfo(slot);
    return (info.flags & pkcs11js.CKF_TOKEN_INITIALIZED) !== 0 && tokenLabelOf(pkcs11, slot) === profile.tokenLabel;
  });
  if (existing) return existing;
  if (!profile.initializeToken) {
    throw new TokenOpenError('no-token', `no token labelled '${profile.tokenLabel}' (profile ${profile.name})`);
  }
  const free = slots.find((slot) => (pkcs11.C_GetTokenInfo(slot).flags & pkcs11js.CKF_TOKEN_INITIALIZED) === 0);
  if (!free) throw new Error('no free slot to initialise a token in');
  if (profile.soPin === undefined) throw new Error('initializeToken needs soPin in the HSM profile');
  pkcs11.C_InitToken(free, profile.soPin, profile.tokenLabel.padEnd(TOKEN_LABEL_BYTES, ' '));
  const session = pkcs11.C_OpenSession(free, pkcs11js.CKF_SERIAL_SESSION | pkcs11js.CKF_RW_SESSION);
  try {
    pkcs11.C_Login(session, pkcs11js.CKU_SO, profile.soPin);
    pkcs11.C_InitPIN(session, profile.pin);
    pkcs11.C_Logout(session);
  } finally {
    pkcs11.C_CloseSession(session);
  }
  log.info({ token: profile.tokenLabel }, 'initialised a new token');
  return free;
}

/**
 * The token directories of an embedded SoftHSM2 (one per token, made by C_InitToken or
 * softhsm2-util), as one comparable string; undefined for other modules.
 */
function embeddedTokensOf(profile: HsmProfile, dataDir: string): string | undefined {
  if (!profile.softhsm2ConfTemplate) return undefined;
  return fs
    .readdirSync(tokenDirOf(dataDir), { withFileTypes: true })
    .filter((entry) => entry.isDirectory())
    .map((entry) => entry.name)
    .sort()
    .join('/');
}

/** Where an embedded SoftHSM2 keeps this instance's tokens (made on first use). */
export function tokenDirOf(dataDir: string): string {
  const tokenDir = path.resolve(dataDir, 'tokens');
  fs.mkdirSync(tokenDir, { recursive: true, mode: 0o700 });
  return tokenDir;
}

/** Renders the SoftHSM2 config so the token lives under this instance's data directory. */
export function prepareSoftHsmConf(template: string, dataDir: string): string {
  const tokenDir = tokenDirOf(dataDir);
  const rendered = fs.readFileSync(template, 'utf8').replaceAll('@TOKEN_DIR@', tokenDir);
  const confPath = path.resolve(dataDir, 'softhsm2.conf');
  fs.writeFileSync(confPath, rendered, { mode: 0o600 });
  process.env.SOFTHSM2_CONF = confPath;
  return tokenDir;
}
