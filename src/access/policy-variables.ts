import type { ConditionValues } from './condition-operators';

/**
 * IAM policy variables in Resource and condition values, as IAM resolves them (policy
 * Version 2012-10-17 only; the 2008 language has no variables):
 *
 * - `${key}` is replaced by the request's value of condition key `key` (case-insensitive);
 *   a key that is absent or multi-valued cannot be resolved, and the element holding it
 *   matches nothing;
 * - `${key, 'default'}` uses the default text instead (`''` is a quote in it);
 * - `${*}`, `${?}`, `${$}` are a literal `*`, `?` and `$`;
 * - one round only: substituted text is never wildcard or variable syntax.
 *
 * A resolved pattern keeps literal and wildcard characters apart, so a substituted `*` or
 * an escaped `${*}` never acts as a wildcard.
 */
export interface PatternChar {
  c: string;
  /** `*` or `?` written as wildcard syntax in the policy. */
  wild: boolean;
}

export interface ResolvedPattern {
  /** The text with every wildcard taken literally (for exact-match operators). */
  text: string;
  chars: readonly PatternChar[];
}

const ESCAPES: Record<string, string> = { '*': '*', '?': '?', $: '$' };

/** Without variables (or in the 2008 language): `*` and `?` are wildcards, everything else literal. */
export function plainPattern(text: string): ResolvedPattern {
  return { text, chars: [...text].map((c) => ({ c, wild: c === '*' || c === '?' })) };
}

/** Resolves a policy string; undefined when a variable has no (single) value and no default. */
export function resolvePattern(text: string, values: ConditionValues, variables: boolean): ResolvedPattern | undefined {
  if (!variables || !text.includes('${')) return plainPattern(text);
  const chars: PatternChar[] = [];
  const literal = (s: string) => {
    for (const c of s) chars.push({ c, wild: false });
  };
  let i = 0;
  while (i < text.length) {
    if (text[i] === '$' && text[i + 1] === '{') {
      const parsed = parseVariable(text, i + 2);
      if (!parsed) return undefined;
      i = parsed.end;
      const escaped = ESCAPES[parsed.name];
      if (escaped !== undefined && parsed.fallback === undefined) {
        literal(escaped);
        continue;
      }
      const found = values.get(parsed.name.toLowerCase());
      if (found && found.length === 1) literal(found[0]);
      else if (parsed.fallback !== undefined) literal(parsed.fallback);
      else return undefined;
      continue;
    }
    const c = text[i++];
    chars.push({ c, wild: c === '*' || c === '?' });
  }
  return { text: chars.map((p) => p.c).join(''), chars };
}

/** `name}` or `name, 'default'}` starting at `from`; whitespace around both is ignored. */
function parseVariable(text: string, from: number): { name: string; fallback?: string; end: number } | undefined {
  const close = text.indexOf('}', from);
  const comma = text.indexOf(',', from);
  if (close < 0) return undefined;
  if (comma < 0 || comma > close) {
    const name = text.slice(from, close).trim();
    return name === '' || /\s/.test(name) ? undefined : { name, end: close + 1 };
  }
  const name = text.slice(from, comma).trim();
  if (name === '' || /\s/.test(name)) return undefined;
  let i = comma + 1;
  while (text[i] === ' ') i++;
  if (text[i] !== "'") return undefined;
  let fallback = '';
  i++;
  for (;;) {
    if (i >= text.length) return undefined;
    if (text[i] === "'") {
      if (text[i + 1] === "'") {
        fallback += "'";
        i += 2;
        continue;
      }
      i++;
      break;
    }
    fallback += text[i++];
  }
  while (text[i] === ' ') i++;
  if (text[i] !== '}') return undefined;
  return { name, fallback, end: i + 1 };
}
