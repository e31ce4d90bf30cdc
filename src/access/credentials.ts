import { createHash } from 'node:crypto';
import { readJsonFile } from '../config/json-file';
import { policyFromJson, type PolicyDocument, AWS_PRINCIPAL } from './policy-document';
import type { Caller } from './principal';
import { PrincipalDirectory } from './principal-directory';

/** One access key from the credentials file. */
export interface AccessKey {
  accessKeyId: string;
  secretAccessKey: string;
  accountId: string;
  /** Defaults to the account root, arn:aws:iam::<accountId>:root. */
  principalArn?: string;
  /** aws:userid (IAM's unique id, e.g. AIDA…); defaults as described in userIdOf. */
  userId?: string;
  /**
   * Temporary credentials: the session token every request must carry (X-Amz-Security-Token).
   * A key without one is long-term: a request carrying any token is refused, as AWS refuses it.
   */
  sessionToken?: string;
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
  /**
   * Identity policies by principal ARN (user, role or assumed-role session; a role's apply to
   * its sessions): one IAM policy document or a list of them. Principals not listed have no
   * identity policy: as in IAM, they get only what key policies grant them directly and
   * grants (the account root is never restricted by identity policies).
   */
  identityPolicies?: Record<string, unknown>;
  /** aws:PrincipalTag/<key> by user or role ARN (a session has its role's tags). */
  principalTags?: Record<string, unknown>;
}

/** Access keys by id. Secrets stay in this object; they are never logged. */
export class Credentials {
  private constructor(
    private byId: ReadonlyMap<string, AccessKey>,
    private tokens: ReadonlyMap<string, AuthToken> = new Map(),
    private identityPolicies: ReadonlyMap<string, readonly PolicyDocument[]> = new Map(),
    private principalTags: ReadonlyMap<string, Readonly<Record<string, string>>> = new Map(),
  ) {}

  /**
   * Reload (SIGHUP): takes over a freshly loaded file's contents in one synchronous step, so
   * every authenticator holding this object sees either the old file or the new one.
   */
  adopt(next: Credentials): void {
    this.byId = next.byId;
    this.tokens = next.tokens;
    this.identityPolicies = next.identityPolicies;
    this.principalTags = next.principalTags;
  }

  static empty(): Credentials {
    return new Credentials(new Map());
  }

  static load(file: string): Credentials {
    // The file's name leads every refusal, at start-up and on SIGHUP alike (README, Production).
    let parsed: CredentialsFile;
    try {
      parsed = readJsonFile(file) as CredentialsFile;
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      throw code ? new Error(`${file}: ${code}`) : err;
    }
    if (parsed && parsed.accessKeys === undefined && Array.isArray(parsed.authTokens)) parsed.accessKeys = [];
    if (!parsed || !Array.isArray(parsed.accessKeys)) throw new Error(`${file}: expected {"accessKeys": [...]}`);
    const byId = new Map<string, AccessKey>();
    for (const [i, key] of parsed.accessKeys.entries()) {
      for (const field of ['accessKeyId', 'secretAccessKey', 'accountId'] as const) {
        if (typeof key[field] !== 'string' || key[field] === '') throw new Error(`${file}: accessKeys[${i}] needs '${field}'`);
      }
      if (!/^\d{12}$/.test(key.accountId)) throw new Error(`${file}: accessKeys[${i}].accountId must be 12 digits`);
      if (key.userId !== undefined && (typeof key.userId !== 'string' || key.userId === '')) throw new Error(`${file}: accessKeys[${i}].userId must be a non-empty string`);
      if (key.sessionToken !== undefined && (typeof key.sessionToken !== 'string' || key.sessionToken === '')) throw new Error(`${file}: accessKeys[${i}].sessionToken must be a non-empty string`);
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
    return new Credentials(byId, tokens, identityPoliciesOf(file, parsed.identityPolicies), principalTagsOf(file, parsed.principalTags));
  }

  /** The principals of this file and their identity policies, for access decisions. */
  directory(): PrincipalDirectory {
    const principals = [...this.byId.values()].map((k) => callerOf(k));
    for (const t of this.tokens.values()) principals.push({ accountId: t.accountId, principalArn: t.principalArn ?? `arn:aws:iam::${t.accountId}:root`, accessKeyId: '' });
    return new PrincipalDirectory(principals, this.identityPolicies, this.principalTags);
  }

  find(accessKeyId: string): AccessKey | undefined {
    return this.byId.get(accessKeyId);
  }

  findToken(token: string): AuthToken | undefined {
    return this.tokens.get(tokenDigest(token));
  }
}

function identityPoliciesOf(file: string, raw: unknown): Map<string, PolicyDocument[]> {
  const out = new Map<string, PolicyDocument[]>();
  if (raw === undefined) return out;
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) throw new Error(`${file}: identityPolicies must map principal ARNs to policy documents`);
  for (const [principal, docs] of Object.entries(raw)) {
    if (!AWS_PRINCIPAL.test(principal) || /^\d{12}$/.test(principal)) throw new Error(`${file}: identityPolicies: '${principal}' is not a principal ARN`);
    const list = Array.isArray(docs) ? docs : [docs];
    out.set(
      principal,
      list.map((doc, i) => {
        try {
          return policyFromJson(doc, 'identity');
        } catch (err) {
          throw new Error(`${file}: identityPolicies['${principal}'][${i}]: ${(err as Error).message}`);
        }
      }),
    );
  }
  return out;
}

function principalTagsOf(file: string, raw: unknown): Map<string, Record<string, string>> {
  const out = new Map<string, Record<string, string>>();
  if (raw === undefined) return out;
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) throw new Error(`${file}: principalTags must map principal ARNs to {"key": "value"} objects`);
  for (const [principal, tags] of Object.entries(raw)) {
    if (!/^arn:aws[a-z-]*:iam::\d{12}:(user|role)\/.+$/.test(principal)) throw new Error(`${file}: principalTags: '${principal}' is not a user or role ARN`);
    if (typeof tags !== 'object' || tags === null || Array.isArray(tags) || !Object.values(tags).every((v) => typeof v === 'string')) {
      throw new Error(`${file}: principalTags['${principal}'] must be an object of string values`);
    }
    out.set(principal, tags as Record<string, string>);
  }
  return out;
}

function tokenDigest(token: string): string {
  return createHash('sha256').update(token, 'utf8').digest('hex');
}

export function callerOf(key: AccessKey): Caller {
  return {
    accountId: key.accountId,
    principalArn: key.principalArn ?? `arn:aws:iam::${key.accountId}:root`,
    accessKeyId: key.accessKeyId,
    ...(key.userId !== undefined ? { userId: key.userId } : {}),
    ...(key.sessionToken !== undefined ? { temporaryCredentials: true as const } : {}),
  };
}
