import { execFileSync } from 'node:child_process';
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

/** Lists the token objects of a test server's data directory, read through PKCS#11. */
export function listTokenObjects(dataDir: string): TokenObject[] {
  return JSON.parse(execFileSync(process.execPath, [CLI, dataDir, 'list'], { encoding: 'utf8', env: toolEnv() })) as TokenObject[];
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
