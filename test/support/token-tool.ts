import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { activeToken } from './test-tokens';

const CLI = path.join(__dirname, 'token-tool-cli.js');

export interface TokenObject {
  label: string;
  class: number;
  sensitive: boolean;
  extractable: boolean;
  alwaysSensitive: boolean;
  neverExtractable: boolean;
}

/** Another token of a test server's SoftHSM2 directory (a custom key store backend). */
export interface OtherToken {
  label: string;
  pin: string;
}

const envOf = (token: OtherToken | undefined) => (token ? { ...toolEnv(), TOKEN_LABEL: token.label, TOKEN_PIN: token.pin } : toolEnv());

/** Lists the token objects of a test server's data directory, read through PKCS#11. */
export function listTokenObjects(dataDir: string, token?: OtherToken): TokenObject[] {
  return JSON.parse(execFileSync(process.execPath, [CLI, dataDir, 'list'], { encoding: 'utf8', env: envOf(token) })) as TokenObject[];
}

/**
 * Initialises a second SoftHSM2 token in `dataDir`'s token directory before the service
 * starts (the service renders the same softhsm2.conf at start-up).
 */
export function initSecondToken(dataDir: string, template: string, token: OtherToken): void {
  const tokenDir = path.join(dataDir, 'tokens');
  fs.mkdirSync(tokenDir, { recursive: true, mode: 0o700 });
  fs.writeFileSync(path.join(dataDir, 'softhsm2.conf'), fs.readFileSync(template, 'utf8').replaceAll('@TOKEN_DIR@', tokenDir));
  execFileSync(process.execPath, [CLI, dataDir, 'init-token'], { env: envOf(token) });
}

export function createOrphanObject(dataDir: string, label: string): void {
  execFileSync(process.execPath, [CLI, dataDir, 'create-orphan', label], { env: toolEnv() });
}

export function destroyTokenObject(dataDir: string, label: string): void {
  execFileSync(process.execPath, [CLI, dataDir, 'destroy', label], { env: toolEnv() });
}

function toolEnv(): NodeJS.ProcessEnv {
  return { ...process.env, P11KMS_TEST_TOKEN: activeToken().name };
}
