import * as fs from 'node:fs';
import * as path from 'node:path';
import * as pkcs11js from 'pkcs11js';
import type { HsmQuirks } from '../../src/custody/hsm-profile';

const NATIVE_CONFIG = path.resolve(__dirname, '..', '..', '..', 'native-config');

/** A PKCS#11 implementation the token-dependent suites run against. */
export interface TestToken {
  name: string;
  /** Absolute path of its HSM profile. */
  profile: string;
  module: string;
  moduleParameters?: string;
  softhsm2ConfTemplate?: string;
  tokenLabel: string;
  pin: string;
  quirks: Partial<HsmQuirks>;
}

function tokenOf(file: string): TestToken {
  const profile = path.join(NATIVE_CONFIG, file);
  const raw = JSON.parse(fs.readFileSync(profile, 'utf8')) as TestToken;
  return { ...raw, profile, quirks: raw.quirks ?? {} };
}

/**
 * SoftHSM2 (the default profile) and NSS softokn (native-config/nss-softokn.json): the second,
 * independent implementation. Both are installed by scripts/run.sh, so both always run in CI.
 */
export const TEST_TOKENS: readonly TestToken[] = [tokenOf('softhsm2.json'), tokenOf('nss-softokn.json')];

let active: TestToken = TEST_TOKENS[0];

/** The token of the suite running now; TestServer and the in-process harness use its profile. */
export function activeToken(): TestToken {
  return active;
}

/**
 * Registers a suite once per test token ("<title> [nss-softokn]" for the second one). The
 * body reads the token it runs on from its argument or activeToken(), and must expect what
 * that token's profile says it cannot do (never skip silently).
 */
export function describeEachToken(title: string, body: (this: Mocha.Suite, token: TestToken) => void): void {
  for (const token of TEST_TOKENS) {
    describe(token === TEST_TOKENS[0] ? title : `${title} [${token.name}]`, function () {
      before(() => {
        active = token;
      });
      after(() => {
        active = TEST_TOKENS[0];
      });
      body.call(this, token);
    });
  }
}

/**
 * Loads a test server's token module in this process, independently of the service's code,
 * configured for that server's data directory (or initialises `loaded` again after
 * C_Finalize). C_Finalize it when done.
 */
export function loadTokenModule(token: TestToken, dataDir: string, loaded?: pkcs11js.PKCS11): pkcs11js.PKCS11 {
  const p = loaded ?? new pkcs11js.PKCS11();
  if (!loaded) p.load(token.module);
  const init = () =>
    p.C_Initialize({
      flags: pkcs11js.CKF_OS_LOCKING_OK,
      ...(token.moduleParameters ? { libraryParameters: token.moduleParameters.replaceAll('@TOKEN_DIR@', path.join(dataDir, 'tokens')) } : {}),
    });
  // SoftHSM2 reads SOFTHSM2_CONF once per C_Initialize.
  if (token.softhsm2ConfTemplate) process.env.SOFTHSM2_CONF = path.join(dataDir, 'softhsm2.conf');
  try {
    init();
  } catch (err) {
    // Left initialised by other code in this process, with another configuration: start over.
    if (!/CKR_CRYPTOKI_ALREADY_INITIALIZED/.test(String((err as Error).message))) throw err;
    p.C_Finalize();
    init();
  }
  return p;
}

/** The slot holding the p11kms token. */
export function tokenSlot(p: pkcs11js.PKCS11, token: TestToken): Buffer {
  const slot = p.C_GetSlotList(true).find((s) => p.C_GetTokenInfo(s).label.replace(/[\s\0]+$/, '') === token.tokenLabel);
  if (!slot) throw new Error(`no token labelled '${token.tokenLabel}' (${token.name})`);
  return slot;
}

/** PKCS#11 3.0's RFC 5649 mechanism where the profile says the token calls it that. */
export function rfc5649Mechanism(token: TestToken): number {
  return token.quirks.rfc5649Mechanism === 'CKM_AES_KEY_WRAP_KWP' ? 0x210b : pkcs11js.CKM_AES_KEY_WRAP_PAD;
}
