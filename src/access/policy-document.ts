import { KmsError } from '../errors';
import { isConditionOperator } from './condition-operators';

/**
 * Policy documents (key policies and identity policies) parsed into a normalised, typed form
 * and validated as AWS KMS does: bad JSON, unknown fields, bad effects, malformed principals
 * and unknown condition operators are MalformedPolicyDocumentException.
 */

export type Effect = 'Allow' | 'Deny';

/** A Principal / NotPrincipal element. `any` is the bare "*" (or {"AWS": "*"}). */
export interface PrincipalSet {
  readonly any: boolean;
  /** AWS principals: account ids, account roots, user/role ARNs, assumed-role session ARNs. */
  readonly aws: readonly string[];
  /** Service / Federated / CanonicalUser principals: kept, never matched by a p11kms caller. */
  readonly other: readonly string[];
}

export interface ConditionEntry {
  /** e.g. StringEquals, ForAnyValue:StringLike, NumericLessThanIfExists */
  readonly operator: string;
  readonly key: string;
  readonly values: readonly string[];
}

/** A key policy statement without action or without resource elements applies to nothing (AWS: "has no effect"). */
export interface Statement {
  readonly sid?: string;
  readonly effect: Effect;
  readonly principal?: PrincipalSet;
  readonly notPrincipal?: PrincipalSet;
  readonly action?: readonly string[];
  readonly notAction?: readonly string[];
  readonly resource?: readonly string[];
  readonly notResource?: readonly string[];
  readonly conditions: readonly ConditionEntry[];
}

export interface PolicyDocument {
  readonly version?: string;
  readonly id?: string;
  readonly statements: readonly Statement[];
}

export type PolicyKind = 'key' | 'identity';

export interface ParseOptions {
  /** Key policies: is this AWS principal known (credentials file)? Absent: not checked. */
  principalExists?: (principal: string) => boolean;
}

const TOP_LEVEL = new Set(['Version', 'Id', 'Statement']);
const STATEMENT_FIELDS = new Set(['Sid', 'Effect', 'Principal', 'NotPrincipal', 'Action', 'NotAction', 'Resource', 'NotResource', 'Condition']);
const PRINCIPAL_TYPES = new Set(['AWS', 'Service', 'Federated', 'CanonicalUser']);
const VERSIONS = new Set(['2012-10-17', '2008-10-17']);

/** An AWS principal in any of the forms a key policy may name. */
export const AWS_PRINCIPAL =
  /^(\d{12}|arn:aws[a-z-]*:iam::\d{12}:(root|user\/.+|role\/.+)|arn:aws[a-z-]*:sts::\d{12}:assumed-role\/[^/]+\/.+)$/;

export function malformed(message: string): KmsError {
  return new KmsError('MalformedPolicyDocumentException', message);
}

/** Parses and validates a policy document; throws MalformedPolicyDocumentException. */
export function parsePolicy(text: string, kind: PolicyKind, options: ParseOptions = {}): PolicyDocument {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch {
    throw malformed('The policy document is not valid JSON.');
  }
  return policyFromJson(raw, kind, options);
}

/** Validates an already parsed JSON value (identity policies in the credentials file). */
export function policyFromJson(raw: unknown, kind: PolicyKind, options: ParseOptions = {}): PolicyDocument {
  if (!isObject(raw)) throw malformed('The policy document must be a JSON object.');
  for (const field of Object.keys(raw)) {
    if (!TOP_LEVEL.has(field)) throw malformed(`The policy document has an unknown field '${field}'.`);
  }
  if (raw.Version !== undefined && (typeof raw.Version !== 'string' || !VERSIONS.has(raw.Version))) {
    throw malformed(`The policy document has an invalid Version; use "2012-10-17".`);
  }
  if (raw.Id !== undefined && typeof raw.Id !== 'string') throw malformed('The policy document Id must be a string.');
  const list = Array.isArray(raw.Statement) ? raw.Statement : raw.Statement === undefined ? undefined : [raw.Statement];
  if (!list || list.length === 0) throw malformed('The policy document must contain at least one Statement.');
  const statements = list.map((s, i) => statementFromJson(s, i, kind, options));
  return { version: raw.Version as string | undefined, id: raw.Id as string | undefined, statements };
}

/**
 * What AWS refuses when a key policy is written (CreateKey, PutKeyPolicy, ReplicateKey) but not
 * when it evaluates one: ForAllValues on a single-valued key that holds for requests without
 * it. KMS developer guide, "AWS KMS condition keys" (using set operators): "If you create or
 * update a policy that includes a ForAllValues set operator with the
 * kms:EncryptionContext:context-key or aws:RequestTag/tag-key condition keys, AWS KMS returns
 * the following error message: OverlyPermissiveCondition: …". Stored policies are not
 * re-checked, so a key written before this rule keeps its meaning.
 */
export function rejectOverlyPermissiveConditions(document: PolicyDocument): void {
  for (const statement of document.statements) {
    for (const { operator, key } of statement.conditions) {
      if (!operator.startsWith('ForAllValues:')) continue;
      // The guide's kms:EncryptionContext:context-key section gives the message for that key
      // ("OverlyPermissiveCondition:EncryptionContext: …"); its overview the one for tags.
      const [prefix, what] = /^kms:EncryptionContext:/i.test(key) ? ['OverlyPermissiveCondition:EncryptionContext:', 'encryption context'] : /^aws:RequestTag\//i.test(key) ? ['OverlyPermissiveCondition:', 'tag'] : [];
      if (what) {
        throw malformed(
          `${prefix} Using the ForAllValues set operator with a single-valued condition key matches requests without the specified ${what} or with an unspecified ${what}. To fix, remove ForAllValues.`,
        );
      }
    }
  }
}

/**
 * What AWS refuses when a key policy is written: two statements with one Sid. AWS's
 * troubleshooting of a refused PutKeyPolicy (MalformedPolicyDocumentException, knowledge
 * center "kms-policy-error-invalid-principals") says to check for duplicate SID values and
 * remove them; the message is IAM's ("Statement IDs (SID) in a single policy must be unique."),
 * as KMS's own is not recorded. Written policies only, like the check above.
 */
export function rejectDuplicateStatementIds(document: PolicyDocument): void {
  const seen = new Set<string>();
  for (const { sid } of document.statements) {
    if (sid === undefined) continue;
    if (seen.has(sid)) throw malformed('Statement IDs (SID) in a single policy must be unique.');
    seen.add(sid);
  }
}

function statementFromJson(raw: unknown, index: number, kind: PolicyKind, options: ParseOptions): Statement {
  const where = `Statement ${index + 1}`;
  if (!isObject(raw)) throw malformed(`${where} must be a JSON object.`);
  for (const field of Object.keys(raw)) {
    if (!STATEMENT_FIELDS.has(field)) throw malformed(`${where} has an unknown field '${field}'.`);
  }
  if (raw.Sid !== undefined && typeof raw.Sid !== 'string') throw malformed(`${where}: Sid must be a string.`);
  if (raw.Effect !== 'Allow' && raw.Effect !== 'Deny') {
    throw malformed(`${where} has an invalid Effect ${JSON.stringify(raw.Effect ?? null)}; it must be "Allow" or "Deny".`);
  }
  if (kind === 'key') {
    exactlyOne(raw, 'Principal', 'NotPrincipal', where);
    // AWS (CreateKey/PutKeyPolicy Policy): a key policy statement without Action or Resource
    // "has no effect" and the request succeeds; only naming both forms of one is malformed.
    atMostOne(raw, 'Action', 'NotAction', where);
    atMostOne(raw, 'Resource', 'NotResource', where);
  } else {
    if (raw.Principal !== undefined || raw.NotPrincipal !== undefined) {
      throw malformed(`${where}: an identity policy must not have a Principal.`);
    }
    exactlyOne(raw, 'Action', 'NotAction', where);
    exactlyOne(raw, 'Resource', 'NotResource', where);
  }
  const statement: Statement = {
    sid: raw.Sid as string | undefined,
    effect: raw.Effect,
    principal: raw.Principal === undefined ? undefined : principalsFromJson(raw.Principal, where, options),
    notPrincipal: raw.NotPrincipal === undefined ? undefined : principalsFromJson(raw.NotPrincipal, where, options),
    action: raw.Action === undefined ? undefined : actionsFromJson(raw.Action, where, kind),
    notAction: raw.NotAction === undefined ? undefined : actionsFromJson(raw.NotAction, where, kind),
    resource: raw.Resource === undefined ? undefined : stringList(raw.Resource, `${where}: Resource`),
    notResource: raw.NotResource === undefined ? undefined : stringList(raw.NotResource, `${where}: NotResource`),
    conditions: raw.Condition === undefined ? [] : conditionsFromJson(raw.Condition, where),
  };
  return statement;
}

function exactlyOne(raw: Record<string, unknown>, a: string, b: string, where: string): void {
  const has = (raw[a] !== undefined ? 1 : 0) + (raw[b] !== undefined ? 1 : 0);
  if (has !== 1) throw malformed(`${where} must have exactly one of ${a} or ${b}.`);
}

function atMostOne(raw: Record<string, unknown>, a: string, b: string, where: string): void {
  if (raw[a] !== undefined && raw[b] !== undefined) throw malformed(`${where} must not have both ${a} and ${b}.`);
}

function principalsFromJson(raw: unknown, where: string, options: ParseOptions): PrincipalSet {
  if (raw === '*') return { any: true, aws: [], other: [] };
  if (!isObject(raw) || Object.keys(raw).length === 0) throw malformed(`${where}: Principal must be "*" or an object such as {"AWS": "<arn>"}.`);
  const aws: string[] = [];
  const other: string[] = [];
  let any = false;
  for (const [type, value] of Object.entries(raw)) {
    if (!PRINCIPAL_TYPES.has(type)) throw malformed(`${where}: unknown principal type '${type}'.`);
    for (const principal of stringList(value, `${where}: Principal.${type}`)) {
      if (type !== 'AWS') {
        other.push(`${type}:${principal}`);
        continue;
      }
      if (principal === '*') {
        any = true;
        continue;
      }
      if (!AWS_PRINCIPAL.test(principal) || (options.principalExists && !options.principalExists(principal))) {
        throw malformed('Policy contains a statement with one or more invalid principals.');
      }
      aws.push(principal);
    }
  }
  return { any, aws, other };
}

function actionsFromJson(raw: unknown, where: string, kind: PolicyKind): string[] {
  const actions = stringList(raw, `${where}: Action`);
  for (const action of actions) {
    const ok = action === '*' || (kind === 'key' ? /^kms:[A-Za-z*?]+$/i.test(action) : /^[a-z0-9-]+:[A-Za-z*?]+$/i.test(action));
    if (!ok) throw malformed(`${where} has an invalid action '${action}'${kind === 'key' ? '; a key policy may name kms: actions only' : ''}.`);
  }
  return actions;
}

function conditionsFromJson(raw: unknown, where: string): ConditionEntry[] {
  if (!isObject(raw)) throw malformed(`${where}: Condition must be an object of operators.`);
  const entries: ConditionEntry[] = [];
  for (const [operator, block] of Object.entries(raw)) {
    if (!isConditionOperator(operator)) throw malformed(`${where} has an unknown condition operator '${operator}'.`);
    if (!isObject(block) || Object.keys(block).length === 0) throw malformed(`${where}: Condition ${operator} must map condition keys to values.`);
    for (const [key, value] of Object.entries(block)) {
      if (!/^[a-z0-9]+:.+$/i.test(key)) throw malformed(`${where} has an invalid condition key '${key}'.`);
      const values = (Array.isArray(value) ? value : [value]).map((v) => {
        if (typeof v === 'string') return v;
        if (typeof v === 'number' || typeof v === 'boolean') return String(v);
        throw malformed(`${where}: condition values must be strings, numbers or booleans.`);
      });
      if (values.length === 0) throw malformed(`${where}: Condition ${operator} ${key} has no values.`);
      entries.push({ operator, key, values });
    }
  }
  return entries;
}

function stringList(raw: unknown, what: string): string[] {
  const list = Array.isArray(raw) ? raw : [raw];
  if (list.length === 0 || !list.every((v) => typeof v === 'string' && v !== '')) throw malformed(`${what} must be a string or a list of strings.`);
  return list as string[];
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}
