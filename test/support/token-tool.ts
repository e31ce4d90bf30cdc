import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { activeToken } from './test-tokens';

const CLI = path.join(__dirname, 'token-tool-cli.js');

export interface TokenObject {
  label: string;
  /** CKA_ID as latin1 text (`p11kms#<creation id>` for objects made since creation ids). */
  id: string;
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

export function createOrphanObject(dataDir: string, label: string, id?: string, token?: OtherToken): void {
  execFileSync(process.execPath, [CLI, dataDir, 'create-orphan', label, ...(id ? [id] : [])], { env: envOf(token) });
}

export function destroyTokenObject(dataDir: string, label: string, token?: OtherToken): void {
  execFileSync(process.execPath, [CLI, dataDir, 'destroy', label], { env: envOf(token) });
}

function toolEnv(): NodeJS.ProcessEnv {
  return { ...process.env, P11KMS_TEST_TOKEN: activeToken().name };
}

export function createUnmarkedObject(dataDir: string): void {
  createOrphanObject(dataDir, '');
}

/**
 * A long-lived PKCS#11 view of a server's token from another process (one login for its
 * whole life), for checking the token between rounds of a test without logging in again.
 */
export class TokenInspector {
  private readonly child: ChildProcess;
  private buffer = '';
  private readonly waiting: Array<{ resolve: (line: string) => void; reject: (err: Error) => void }> = [];
  /** Set once the tool has exited: a list() then fails at once instead of waiting for ever. */
  private exited?: Error;

  constructor(dataDir: string) {
    this.child = spawn(process.execPath, [CLI, dataDir, 'serve'], { stdio: ['pipe', 'pipe', 'inherit'], env: toolEnv() });
    this.child.stdout!.on('data', (d: Buffer) => {
      this.buffer += d.toString();
      for (let nl = this.buffer.indexOf('\n'); nl >= 0; nl = this.buffer.indexOf('\n')) {
        const line = this.buffer.slice(0, nl);
        this.buffer = this.buffer.slice(nl + 1);
        this.waiting.shift()?.resolve(line);
      }
    });
    this.child.once('exit', (code, signal) => {
      this.exited = new Error(`the token inspector exited (${signal ?? code}); its stderr is in the test output`);
      for (const waiter of this.waiting.splice(0)) waiter.reject(this.exited);
    });
  }

  list(): Promise<TokenObject[]> {
    return new Promise((resolve, reject) => {
      if (this.exited) return reject(this.exited);
      this.waiting.push({ resolve: (line) => resolve(JSON.parse(line) as TokenObject[]), reject });
      this.child.stdin!.write('list\n');
    });
  }

  close(): Promise<void> {
    return new Promise((resolve) => {
      if (this.exited) return resolve();
      this.child.once('exit', () => resolve());
      this.child.stdin!.end();
    });
  }
}
