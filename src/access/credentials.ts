import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import type { Caller } from './principal';

/** One access key from the credentials file. */
export interface AccessKey {
  accessKeyId: string;
  secretAccessKey: string;
  accountId: string;
  /** Defaults to the account root, arn:aws:iam::<accountId>:root. */
  principalArn?: string;
}

/**
 * A static X-Auth-Token of the Huawei Cloud / Open Telekom Cloud dialect (in those clouds an
 * IAM-issued token; here a bearer secret the operator lists).
 */
export interface AuthToken {
  token: string;
  accountId: string;
  /** Defaults to the account root, arn:aws:iam::<accountId>:root. */
  principalArn?: string;
}

interface CredentialsFile {
  accessKeys?: AccessKey[];
  authTokens?: AuthToken[];
}

/** Access keys by id. Secrets stay in this object; they are never logged. */
export class Credentials {
  private constructor(
    private readonly byId: ReadonlyMap<string, AccessKey>,
    private readonly tokens: ReadonlyMap<string, AuthToken> = new Map(),
  ) {}

  static empty(): Credentials {
    return new Credentials(new Map());
  }

  static load(file: string): Credentials {
    const parsed = JSON.parse(fs.readFileSync(file, 'utf8')) as CredentialsFile;
    if (parsed && parsed.accessKeys === undefined && Array.isArray(parsed.authTokens)) parsed.accessKeys = [];
    if (!parsed || !Array.isArray(parsed.accessKeys)) throw new Error(`${file}: expected {"accessKeys": [...]}`);
    const byId = new Map<string, AccessKey>();
    for (const [i, key] of parsed.accessKeys.entries()) {
      for (const field of ['accessKeyId', 'secretAccessKey', 'accountId'] as const) {
        if (typeof key[field] !== 'string' || key[field] === '') throw new Error(`${file}: accessKeys[${i}] needs '${field}'`);
      }
      if (!/^\d{12}$/.test(key.accountId)) throw new Error(`${file}: accessKeys[${i}].accountId must be 12 digits`);
      if (byId.has(key.accessKeyId)) throw new Error(`${file}: access key ${key.accessKeyId} is listed twice`);
      byId.set(key.accessKeyId, key);
    }
    const tokens = new Map<string, AuthToken>();
    for (const [i, entry] of (parsed.authTokens ?? []).entries()) {
      for (const field of ['token', 'accountId'] as const) {
        if (typeof entry[field] !== 'string' || entry[field] === '') throw new Error(`${file}: authTokens[${i}] needs '${field}'`);
      }
      if (!/^\d{12}$/.test(entry.accountId)) throw new Error(`${file}: authTokens[${i}].accountId must be 12 digits`);
      // Looked up by digest, so a lookup does not compare the secret itself character by character.
      const digest = tokenDigest(entry.token);
      if (tokens.has(digest)) throw new Error(`${file}: authTokens[${i}] repeats a token`);
      tokens.set(digest, entry);
    }
    return new Credentials(byId, tokens);
  }

  find(accessKeyId: string): AccessKey | undefined {
    return this.byId.get(accessKeyId);
  }

  findToken(token: string): AuthToken | undefined {
    return this.tokens.get(tokenDigest(token));
  }
}

function tokenDigest(token: string): string {
  return createHash('sha256').update(token, 'utf8').digest('hex');
}

export function callerOf(key: AccessKey): Caller {
  return {
    accountId: key.accountId,
    principalArn: key.principalArn ?? `arn:aws:iam::${key.accountId}:root`,
    accessKeyId: key.accessKeyId,
  };
}
