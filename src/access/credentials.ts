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

interface CredentialsFile {
  accessKeys: AccessKey[];
}

/** Access keys by id. Secrets stay in this object; they are never logged. */
export class Credentials {
  private constructor(private readonly byId: ReadonlyMap<string, AccessKey>) {}

  static empty(): Credentials {
    return new Credentials(new Map());
  }

  static load(file: string): Credentials {
    const parsed = JSON.parse(fs.readFileSync(file, 'utf8')) as CredentialsFile;
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
    return new Credentials(byId);
  }

  find(accessKeyId: string): AccessKey | undefined {
    return this.byId.get(accessKeyId);
  }
}

export function callerOf(key: AccessKey): Caller {
  return {
    accountId: key.accountId,
    principalArn: key.principalArn ?? `arn:aws:iam::${key.accountId}:root`,
    accessKeyId: key.accessKeyId,
  };
}
