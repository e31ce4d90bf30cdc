import { BlockList, isIP } from 'node:net';
import { plainPattern, type PatternChar, type ResolvedPattern, resolvePattern } from './policy-variables';

/**
 * IAM condition operators over a request's condition values, as AWS evaluates them:
 *
 * - every operator of a Condition block must hold, every key within an operator must hold,
 *   and a key holds when the request value matches ANY of the policy's values;
 * - negated operators (StringNotEquals, …) hold when the value matches NONE of them, and
 *   hold when the key is absent from the request;
 * - `…IfExists` holds when the key is absent; `Null` tests presence;
 * - `ForAnyValue:` / `ForAllValues:` compare a multi-valued key element by element
 *   (ForAnyValue is false and ForAllValues true for an absent or empty key).
 */

/**
 * Condition values of one request, keyed by lower-cased condition key. Absent = not in the
 * request. Evaluation only looks keys up (a Map serves).
 */
export type ConditionValues = Pick<ReadonlyMap<string, readonly string[]>, 'get' | 'has'>;

/** Compares a request value with a policy value (variables already resolved). */
type Matcher = (requestValue: string, policyValue: ResolvedPattern) => boolean;
type TextMatcher = (requestValue: string, policyValue: string) => boolean;
const exact = (match: TextMatcher): Matcher => (r, p) => match(r, p.text);

interface OperatorDef {
  match: Matcher;
  negated: boolean;
}

const BASE_OPERATORS: Record<string, OperatorDef> = {
  StringEquals: { match: exact((r, p) => r === p), negated: false },
  StringNotEquals: { match: exact((r, p) => r === p), negated: true },
  StringEqualsIgnoreCase: { match: exact((r, p) => r.toLowerCase() === p.toLowerCase()), negated: false },
  StringNotEqualsIgnoreCase: { match: exact((r, p) => r.toLowerCase() === p.toLowerCase()), negated: true },
  StringLike: { match: (r, p) => globMatchChars(p.chars, r), negated: false },
  StringNotLike: { match: (r, p) => globMatchChars(p.chars, r), negated: true },
  NumericEquals: { match: exact(numeric((r, p) => r === p)), negated: false },
  NumericNotEquals: { match: exact(numeric((r, p) => r === p)), negated: true },
  NumericLessThan: { match: exact(numeric((r, p) => r < p)), negated: false },
  NumericLessThanEquals: { match: exact(numeric((r, p) => r <= p)), negated: false },
  NumericGreaterThan: { match: exact(numeric((r, p) => r > p)), negated: false },
  NumericGreaterThanEquals: { match: exact(numeric((r, p) => r >= p)), negated: false },
  DateEquals: { match: exact(date((r, p) => r === p)), negated: false },
  DateNotEquals: { match: exact(date((r, p) => r === p)), negated: true },
  DateLessThan: { match: exact(date((r, p) => r < p)), negated: false },
  DateLessThanEquals: { match: exact(date((r, p) => r <= p)), negated: false },
  DateGreaterThan: { match: exact(date((r, p) => r > p)), negated: false },
  DateGreaterThanEquals: { match: exact(date((r, p) => r >= p)), negated: false },
  Bool: { match: exact((r, p) => r.toLowerCase() === p.toLowerCase()), negated: false },
  BinaryEquals: { match: exact((r, p) => r === p), negated: false },
  IpAddress: { match: exact(ipMatch), negated: false },
  NotIpAddress: { match: exact(ipMatch), negated: true },
  // AWS: ArnEquals and ArnLike behave the same (both accept wildcards per ARN segment).
  ArnEquals: { match: arnMatchResolved, negated: false },
  ArnLike: { match: arnMatchResolved, negated: false },
  ArnNotEquals: { match: arnMatchResolved, negated: true },
  ArnNotLike: { match: arnMatchResolved, negated: true },
};

interface ParsedOperator {
  base: OperatorDef | 'Null';
  set?: 'ForAnyValue' | 'ForAllValues';
  ifExists: boolean;
}

export function parseOperator(name: string): ParsedOperator | undefined {
  let rest = name;
  let set: ParsedOperator['set'];
  const qualifier = /^(ForAnyValue|ForAllValues):(.+)$/.exec(rest);
  if (qualifier) {
    set = qualifier[1] as ParsedOperator['set'];
    rest = qualifier[2];
  }
  if (rest === 'Null') return set ? undefined : { base: 'Null', ifExists: false };
  let ifExists = false;
  if (rest.endsWith('IfExists')) {
    ifExists = true;
    rest = rest.slice(0, -'IfExists'.length);
  }
  const base = Object.prototype.hasOwnProperty.call(BASE_OPERATORS, rest) ? BASE_OPERATORS[rest] : undefined;
  return base ? { base, set, ifExists } : undefined;
}

export function isConditionOperator(name: string): boolean {
  return parseOperator(name) !== undefined;
}

/**
 * Does one condition (operator, key, policy values) hold for the request? With `variables`
 * (policy Version 2012-10-17), policy variables in the values are resolved first; a value
 * whose variable cannot be resolved matches nothing.
 */
export function evaluateCondition(operator: string, key: string, rawPolicyValues: readonly string[], values: ConditionValues, variables = false): boolean {
  const op = parseOperator(operator);
  if (!op) return false;
  const requestValues = values.get(key.toLowerCase());
  const absent = requestValues === undefined || requestValues.length === 0;
  if (op.base === 'Null') {
    const policyValues = rawPolicyValues;
    // {"Null": {"k": "true"}} holds when k is absent.
    return policyValues.some((v) => (v.toLowerCase() === 'true') === absent);
  }
  const def = op.base;
  const policyValues = rawPolicyValues.map((p) => resolvePattern(p, values, variables)).filter((p): p is ResolvedPattern => p !== undefined);
  const positive = (v: string) => policyValues.some((p) => def.match(v, p));
  const holds = (v: string) => (def.negated ? !positive(v) : positive(v));
  if (absent) {
    if (op.set === 'ForAllValues') return true;
    if (op.set === 'ForAnyValue') return false;
    return op.ifExists || def.negated;
  }
  if (op.set === 'ForAllValues') return requestValues.every(holds);
  if (op.set === 'ForAnyValue') return requestValues.some(holds);
  // A key without a set qualifier: a single value, or a multi-valued key matched as a whole.
  return def.negated ? requestValues.every(holds) : requestValues.some(holds);
}

/** All conditions of a statement (AND). */
export function conditionsHold(
  conditions: readonly { operator: string; key: string; values: readonly string[] }[],
  values: ConditionValues,
  variables = false,
): boolean {
  return conditions.every((c) => evaluateCondition(c.operator, c.key, c.values, values, variables));
}

/** IAM wildcard matching: `*` any run of characters, `?` any one character. */
export function globMatch(pattern: string, value: string, ignoreCase = false): boolean {
  return globMatchChars(plainPattern(pattern).chars, value, ignoreCase);
}

/** Wildcard matching over a resolved pattern: only characters written as wildcards act as wildcards. */
export function globMatchChars(pattern: readonly PatternChar[], value: string, ignoreCase = false): boolean {
  const p = ignoreCase ? pattern.map((x) => ({ c: x.c.toLowerCase(), wild: x.wild })) : pattern;
  const v = [...(ignoreCase ? value.toLowerCase() : value)];
  // Iterative wildcard match (no regular expressions built from policy text).
  let pi = 0;
  let vi = 0;
  let star = -1;
  let mark = 0;
  while (vi < v.length) {
    if (pi < p.length && ((p[pi].wild && p[pi].c === '?') || (!(p[pi].wild && p[pi].c === '*') && p[pi].c === v[vi]))) {
      pi++;
      vi++;
    } else if (pi < p.length && p[pi].wild && p[pi].c === '*') {
      star = pi++;
      mark = vi;
    } else if (star >= 0) {
      pi = star + 1;
      vi = ++mark;
    } else {
      return false;
    }
  }
  while (pi < p.length && p[pi].wild && p[pi].c === '*') pi++;
  return pi === p.length;
}

function numeric(compare: (r: number, p: number) => boolean): TextMatcher {
  return (r, p) => {
    const rv = Number(r);
    const pv = Number(p);
    return r.trim() !== '' && p.trim() !== '' && Number.isFinite(rv) && Number.isFinite(pv) && compare(rv, pv);
  };
}

/** Dates as ISO 8601 or epoch seconds, as IAM accepts them. */
export function parseDate(value: string): number | undefined {
  if (/^\d+$/.test(value)) return Number(value) * 1000;
  const ms = Date.parse(value);
  return Number.isNaN(ms) ? undefined : ms;
}

function date(compare: (r: number, p: number) => boolean): TextMatcher {
  return (r, p) => {
    const rv = parseDate(r);
    const pv = parseDate(p);
    return rv !== undefined && pv !== undefined && compare(rv, pv);
  };
}

function ipMatch(requestValue: string, cidr: string): boolean {
  const ip = requestValue.startsWith('::ffff:') && isIP(requestValue.slice(7)) === 4 ? requestValue.slice(7) : requestValue;
  const family = isIP(ip);
  if (!family) return false;
  const [network, bitsText] = cidr.split('/');
  const netFamily = isIP(network);
  if (!netFamily || netFamily !== family) return false;
  const bits = bitsText === undefined ? (family === 4 ? 32 : 128) : Number(bitsText);
  if (!Number.isInteger(bits) || bits < 0 || bits > (family === 4 ? 32 : 128)) return false;
  const list = new BlockList();
  const type = family === 4 ? 'ipv4' : 'ipv6';
  list.addSubnet(network, bits, type);
  return list.check(ip, type);
}

/** ARNs compare segment by segment (partition, service, region, account, resource) with wildcards. */
export function arnMatch(requestValue: string, pattern: string): boolean {
  return arnMatchResolved(requestValue, plainPattern(pattern));
}

function arnMatchResolved(requestValue: string, pattern: ResolvedPattern): boolean {
  if (pattern.chars.length === 1 && pattern.chars[0].wild && pattern.chars[0].c === '*') return true;
  const r = splitArn(requestValue);
  const p = splitPatternArn(pattern.chars);
  if (!r || !p || p[0].map((x) => x.c).join('') !== 'arn') return false;
  return p.every((segment, i) => globMatchChars(segment, r[i]));
}

function splitArn(arn: string): string[] | undefined {
  const parts = arn.split(':');
  if (parts.length < 6 || parts[0] !== 'arn') return undefined;
  return [...parts.slice(0, 5), parts.slice(5).join(':')];
}

function splitPatternArn(chars: readonly PatternChar[]): PatternChar[][] | undefined {
  const parts: PatternChar[][] = [[]];
  for (const ch of chars) {
    if (ch.c === ':' && parts.length < 6) parts.push([]);
    else parts[parts.length - 1].push(ch);
  }
  return parts.length < 6 ? undefined : parts;
}
