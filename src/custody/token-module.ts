import * as fs from 'node:fs';
import * as path from 'node:path';
import * as pkcs11js from 'pkcs11js';
import type { Logger } from 'pino';
import type { HsmProfile } from './hsm-profile';
import { ckrName } from './pkcs11-errors';

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
 * The PKCS#11 libraries one process has loaded, counted by the tokens using them. Each
 * library is initialised once (CKF_OS_LOCKING_OK: SoftHSM2 crashes under concurrency
 * without it) and finalised when its last token closes.
 */
export class Pkcs11Modules {
  private readonly loaded = new Map<string, { pkcs11: pkcs11js.PKCS11; users: number }>();

  isLoaded(module: string): boolean {
    return this.loaded.has(module);
  }

  acquire(profile: HsmProfile, dataDir: string): pkcs11js.PKCS11 {
    const module = profile.module;
    const entry = this.loaded.get(module);
    if (entry) {
      entry.users++;
      return entry.pkcs11;
    }
    const pkcs11 = new pkcs11js.PKCS11();
    pkcs11.load(module);
    initializeModule(pkcs11, profile, dataDir);
    // Keep the module referenced for the process lifetime: if it is garbage-collected
    // the library is unloaded under running work.
    retainedModules.push(pkcs11);
    this.loaded.set(module, { pkcs11, users: 1 });
    return pkcs11;
  }

  release(module: string): void {
    const entry = this.loaded.get(module);
    if (!entry || --entry.users > 0) return;
    this.loaded.delete(module);
    try {
      entry.pkcs11.C_Finalize();
    } catch {
      // Already finalized; nothing to release.
    }
  }
}

const retainedModules: pkcs11js.PKCS11[] = [];

export function initializeModule(pkcs11: pkcs11js.PKCS11, profile: HsmProfile, dataDir: string): void {
  try {
    pkcs11.C_Initialize({
      flags: pkcs11js.CKF_OS_LOCKING_OK,
      ...(profile.moduleParameters ? { libraryParameters: profile.moduleParameters.replaceAll('@TOKEN_DIR@', tokenDirOf(dataDir)) } : {}),
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
  return pkcs11.C_GetTokenInfo(slot).label.replace(/[\s\0]+$/, '');
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
 * Times every C_* call of the module (synchronous and *Async alike) for metrics; the label is
 * the PKCS#11 function, never an argument.
 */
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
