/**
 * Request validation for the AWS JSON 1.1 protocol, driven by the generated model.
 *
 * Each operation's input schema (src/model/generated/schemas.ts) is compiled by ajv on first use
 * and cached. On success nothing is allocated beyond what ajv does; messages are only built on
 * failure, in the exact wording AWS (Coral) uses:
 *
 * - wrong JSON type, invalid base64, integer out of 32-bit range → SerializationException
 *   (`Value for 'NumberOfBytes' is not a valid integer`, `Value for 'Plaintext' is not valid base64`);
 * - constraint violations → ValidationException, every violation listed in model member order:
 *   `2 validation errors detected: Value null at 'keyId' failed to satisfy constraint: Member must
 *   not be null; Value at 'plaintext' failed to satisfy constraint: Member must have length ...`.
 *
 * Values of blob and sensitive members are never rendered into messages.
 */
import Ajv, { type ErrorObject, type ValidateFunction } from 'ajv';
import { KmsError } from '../../errors';
import { INPUT_SCHEMAS } from '../../model/generated/schemas';
import { OPERATIONS, SHAPES, type ShapeDef, type ShapeType } from '../../model/generated/shapes';
import type { OperationName } from '../../model/generated/types';

// ---------------------------------------------------------------------------------------------
// Base64
// ---------------------------------------------------------------------------------------------

/** Standard base64 alphabet value of each ASCII code, -1 for anything else. */
const B64_VALUE = (() => {
  const t = new Int8Array(128).fill(-1);
  const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/';
  for (let i = 0; i < alphabet.length; i++) t[alphabet.charCodeAt(i)] = i;
  return t;
})();

/** Alphabet and padding characters (irregexp scans this faster than a charCodeAt loop). */
const B64_CHARS = /^[A-Za-z0-9+/]*={0,2}$/;

/**
 * Decoded byte length of a standard base64 string, or -1 when the string is not canonical
 * base64: only the standard alphabet, padding optional but complete when present (length a
 * multiple of 4), no whitespace, and unused trailing bits zero. In other words: exactly the
 * strings for which `Buffer.from(s, 'base64').toString('base64')` gives `s` back (modulo
 * padding). No allocation.
 */
export function base64DecodedLength(s: string): number {
  let n = s.length;
  if (n === 0) return 0;
  if (!B64_CHARS.test(s)) return -1;
  if (s.charCodeAt(n - 1) === 61 /* = */) {
    if ((n & 3) !== 0) return -1;
    n--;
    if (s.charCodeAt(n - 1) === 61) n--;
  }
  const rem = n & 3;
  if (rem === 1) return -1;
  // The last character of a partial group must not carry bits beyond the decoded bytes.
  if (rem === 2 && (B64_VALUE[s.charCodeAt(n - 1)]! & 0x0f) !== 0) return -1;
  if (rem === 3 && (B64_VALUE[s.charCodeAt(n - 1)]! & 0x03) !== 0) return -1;
  return (n * 3) >> 2;
}

// ---------------------------------------------------------------------------------------------
// ajv
// ---------------------------------------------------------------------------------------------

const INT32_MIN = -2147483648;
const INT32_MAX = 2147483647;

// validateSchema false: the schemas are generated, and checked against ajv's meta-schema by the
// unit tests; checking them again here compiled the meta-schema on the first request after
// every start (~40 ms of the ~45 ms that request spent in validation).
const ajv = new Ajv({ allErrors: true, strict: false, messages: false, validateSchema: false });

ajv.addKeyword({
  keyword: 'kmsBlob',
  type: 'string',
  schemaType: 'object',
  errors: false,
  compile(schema: { min?: number; max?: number }) {
    const min = schema.min ?? 0;
    const max = schema.max ?? Number.MAX_SAFE_INTEGER;
    return (data: string): boolean => {
      const len = base64DecodedLength(data);
      return len >= min && len <= max; // len is -1 for invalid base64
    };
  },
});

ajv.addKeyword({
  keyword: 'kmsInt32',
  type: 'number',
  schemaType: 'boolean',
  errors: false,
  validate: (enabled: boolean, data: number): boolean => !enabled || (data >= INT32_MIN && data <= INT32_MAX),
});

/** Epoch seconds a date can hold (ECMAScript's ±8.64e15 ms): beyond, a date would be NaN. */
const MAX_EPOCH_SECONDS = 8.64e12;

ajv.addKeyword({
  keyword: 'kmsTimestamp',
  type: 'number',
  schemaType: 'boolean',
  errors: false,
  validate: (enabled: boolean, data: number): boolean => !enabled || Math.abs(data) <= MAX_EPOCH_SECONDS,
});

const compiled = new Map<string, ValidateFunction>();

function validatorFor(operation: OperationName): ValidateFunction {
  let fn = compiled.get(operation);
  if (fn === undefined) {
    const schema = Object.prototype.hasOwnProperty.call(INPUT_SCHEMAS, operation) ? INPUT_SCHEMAS[operation] : undefined;
    if (schema === undefined) {
      throw new KmsError('UnknownOperationException', '', { internalDetail: `no input schema for ${String(operation)}` });
    }
    fn = ajv.compile(schema);
    compiled.set(operation, fn);
  }
  return fn;
}

/**
 * One step per operation, each compiling that operation's validator (a few ms): run after the
 * service listens (server/warm-up.ts), so that no request pays for a compile.
 */
export function validatorWarmUps(): Array<() => void> {
  return (Object.keys(INPUT_SCHEMAS) as OperationName[]).map((op) => () => void validatorFor(op));
}

// ---------------------------------------------------------------------------------------------
// Public API
// ---------------------------------------------------------------------------------------------

/**
 * Validates a parsed JSON request body against the model input of `operation`. Throws KmsError
 * SerializationException (not an object, wrong JSON type, invalid base64) or ValidationException
 * (constraint violations, AWS wording). Returns normally when the body is valid.
 */
export function validateInput(operation: OperationName, body: unknown): void {
  if (typeof body !== 'object' || body === null || Array.isArray(body)) {
    throw new KmsError('SerializationException', 'Expected a JSON object as the request body');
  }
  const fn = validatorFor(operation);
  if (fn(body)) return;
  throw describeErrors(operation, body as Record<string, unknown>, fn.errors ?? []);
}

// ---------------------------------------------------------------------------------------------
// Failure path: turn ajv errors into AWS messages
// ---------------------------------------------------------------------------------------------

/** Ranks of constraints on the same member, in the order they are reported. */
const enum Rank {
  NotNull = 0,
  Max = 1,
  Min = 2,
  Pattern = 3,
  Enum = 4,
  Elements = 5,
}

interface Problem {
  /** Member indexes (and list indexes) leading to the location; used for model-order sorting. */
  order: number[];
  rank: number;
  /** Dedup key. */
  key: string;
  /**
   * Built only once no SerializationException wins: until then a value may be of any JSON type
   * and depth (rendering a 200,000-deep array would overflow the stack).
   */
  text: () => string;
}

interface Location {
  /** Coral path: camelCase members, `.N.member` for list elements (1-based). */
  awsPath: string;
  /** PascalCase wire path for SerializationException messages. */
  wirePath: string;
  order: number[];
  /** Shape at the location (the list or map itself when `element` is set). */
  shape: ShapeDef | undefined;
  value: unknown;
  /** Set when the error is inside a list or map of non-structure values: Coral reports those on the collection. */
  element?: { kind: 'list' | 'mapValue' | 'mapKey'; shape: ShapeDef | undefined; value: unknown; wirePath: string };
}

const memberIndexCache = new WeakMap<ShapeDef, Map<string, number>>();

function memberIndex(shape: ShapeDef, member: string): number {
  let idx = memberIndexCache.get(shape);
  if (idx === undefined) {
    idx = new Map(Object.keys(shape.members ?? {}).map((m, i) => [m, i]));
    memberIndexCache.set(shape, idx);
  }
  return idx.get(member) ?? Number.MAX_SAFE_INTEGER;
}

function lowerFirst(s: string): string {
  return s.length === 0 ? s : s.charAt(0).toLowerCase() + s.slice(1);
}

function shapeOf(ref: { shape: string } | undefined): ShapeDef | undefined {
  return ref === undefined ? undefined : SHAPES[ref.shape];
}

function child(value: unknown, key: string): unknown {
  if (typeof value !== 'object' || value === null) return undefined;
  return Object.prototype.hasOwnProperty.call(value, key) ? (value as Record<string, unknown>)[key] : undefined;
}

function parsePointer(pointer: string): string[] {
  if (pointer === '') return [];
  return pointer
    .slice(1)
    .split('/')
    .map((s) => s.replace(/~1/g, '/').replace(/~0/g, '~'));
}

function locate(rootShape: ShapeDef | undefined, body: unknown, segments: readonly string[]): Location {
  let shape = rootShape;
  let value: unknown = body;
  let awsPath = '';
  let wirePath = '';
  const order: number[] = [];
  for (let i = 0; i < segments.length && shape !== undefined; i++) {
    const seg = segments[i]!;
    if (shape.type === 'structure') {
      order.push(memberIndex(shape, seg));
      awsPath = awsPath === '' ? lowerFirst(seg) : `${awsPath}.${lowerFirst(seg)}`;
      wirePath = wirePath === '' ? seg : `${wirePath}.${seg}`;
      value = child(value, seg);
      shape = shapeOf(shape.members?.[seg]);
    } else if (shape.type === 'list') {
      const index = Number(seg);
      const elementShape = shapeOf(shape.member);
      const elementValue = Array.isArray(value) ? value[index] : undefined;
      const elementWire = `${wirePath}[${index}]`;
      if (elementShape?.type !== 'structure') {
        return { awsPath, wirePath, order, shape, value, element: { kind: 'list', shape: elementShape, value: elementValue, wirePath: elementWire } };
      }
      order.push(index);
      awsPath = `${awsPath}.${index + 1}.member`;
      wirePath = elementWire;
      value = elementValue;
      shape = elementShape;
    } else if (shape.type === 'map') {
      const valueShape = shapeOf(shape.value);
      const entryValue = child(value, seg);
      const entryWire = `${wirePath}.${seg}`;
      if (valueShape?.type !== 'structure') {
        return { awsPath, wirePath, order, shape, value, element: { kind: 'mapValue', shape: valueShape, value: entryValue, wirePath: entryWire } };
      }
      order.push(Object.keys(value as object).indexOf(seg));
      awsPath = `${awsPath}.${seg}`;
      wirePath = entryWire;
      value = entryValue;
      shape = valueShape;
    } else {
      break;
    }
  }
  return { awsPath, wirePath, order, shape, value };
}

/** Java-style rendering of a value inside `Value '...'` (Coral prints the deserialized object). */
function javaString(shape: ShapeDef | undefined, value: unknown): string {
  if (value === null || value === undefined) return 'null';
  if (shape !== undefined && (shape.type === 'blob' || shape.sensitive === true)) return '**Sensitive Data Redacted**';
  if (Array.isArray(value)) {
    const el = shapeOf(shape?.member);
    return `[${value.map((v) => javaString(el, v)).join(', ')}]`;
  }
  if (typeof value === 'object') {
    const entries = Object.entries(value as Record<string, unknown>);
    if (shape?.type === 'structure') {
      return `{${entries
        .filter(([k]) => shape.members?.[k] !== undefined)
        .map(([k, v]) => `${k}: ${javaString(shapeOf(shape.members?.[k]), v)}`)
        .join(', ')}}`;
    }
    const vs = shapeOf(shape?.value);
    return `{${entries.map(([k, v]) => `${k}=${javaString(vs, v)}`).join(', ')}}`;
  }
  return String(value);
}

/** `Value 'x'`, `Value null`, or just `Value` for blobs and sensitive members. */
function valuePart(shape: ShapeDef | undefined, value: unknown): string {
  if (value === null || value === undefined) return 'Value null';
  if (shape !== undefined && (shape.type === 'blob' || shape.sensitive === true)) return 'Value';
  return `Value '${javaString(shape, value)}'`;
}

function lengthOf(shape: ShapeDef | undefined): boolean {
  return shape !== undefined && shape.type !== 'integer';
}

function maxText(shape: ShapeDef | undefined, limit: number): string {
  return lengthOf(shape)
    ? `Member must have length less than or equal to ${limit}`
    : `Member must have value less than or equal to ${limit}`;
}

function minText(shape: ShapeDef | undefined, limit: number): string {
  return lengthOf(shape)
    ? `Member must have length greater than or equal to ${limit}`
    : `Member must have value greater than or equal to ${limit}`;
}

function enumText(shape: ShapeDef | undefined): string {
  return `Member must satisfy enum value set: [${(shape?.enum ?? []).join(', ')}]`;
}

function patternText(shape: ShapeDef | undefined): string {
  return `Member must satisfy regular expression pattern: ${shape?.pattern ?? ''}`;
}

/** Every constraint of an element shape, as Coral lists them for collection members. */
function allConstraints(shape: ShapeDef | undefined): string[] {
  const out: string[] = [];
  if (shape === undefined) return out;
  if (shape.max !== undefined) out.push(maxText(shape, shape.max));
  if (shape.min !== undefined) out.push(minText(shape, shape.min));
  if (shape.pattern !== undefined) out.push(patternText(shape));
  if (shape.enum !== undefined) out.push(enumText(shape));
  return out;
}

/** What a value of each type must be, in the words of AWS's SerializationException messages. */
const SERIALIZATION_WANTED: Record<ShapeType, string> = {
  blob: 'valid base64',
  integer: 'a valid integer',
  string: 'a valid string',
  boolean: 'a valid boolean',
  timestamp: 'a valid timestamp',
  list: 'a valid list',
  map: 'a valid map',
  structure: 'a valid structure',
};

function serializationText(shape: ShapeDef | undefined, wirePath: string): string {
  return `Value for '${wirePath}' is not ${(shape && SERIALIZATION_WANTED[shape.type]) ?? 'valid'}`;
}

type Classified =
  | { kind: 'serialization' }
  | { kind: 'skip' }
  | { kind: 'violation'; rank: Rank; constraint: string };

/** Classifies one ajv error against the shape and value it concerns. */
function classify(err: ErrorObject, shape: ShapeDef | undefined, value: unknown): Classified {
  switch (err.keyword) {
    case 'required':
      return { kind: 'violation', rank: Rank.NotNull, constraint: 'Member must not be null' };
    case 'type':
    case 'kmsInt32':
    case 'kmsTimestamp':
      return value === null
        ? { kind: 'violation', rank: Rank.NotNull, constraint: 'Member must not be null' }
        : { kind: 'serialization' };
    case 'kmsBlob': {
      if (typeof value !== 'string') return { kind: 'skip' };
      const len = base64DecodedLength(value);
      if (len < 0) return { kind: 'serialization' };
      if (shape?.min !== undefined && len < shape.min) return { kind: 'violation', rank: Rank.Min, constraint: minText(shape, shape.min) };
      if (shape?.max !== undefined && len > shape.max) return { kind: 'violation', rank: Rank.Max, constraint: maxText(shape, shape.max) };
      return { kind: 'skip' };
    }
    case 'maxLength':
    case 'maxItems':
    case 'maxProperties':
    case 'maximum':
      return { kind: 'violation', rank: Rank.Max, constraint: maxText(shape, shape?.max ?? Number(err.params['limit'])) };
    case 'minLength':
    case 'minItems':
    case 'minProperties':
    case 'minimum':
      return { kind: 'violation', rank: Rank.Min, constraint: minText(shape, shape?.min ?? Number(err.params['limit'])) };
    case 'pattern':
      return { kind: 'violation', rank: Rank.Pattern, constraint: patternText(shape) };
    case 'enum':
      // A null required member also fails `type`, which already reports "must not be null".
      return value === null ? { kind: 'skip' } : { kind: 'violation', rank: Rank.Enum, constraint: enumText(shape) };
    default:
      // Wrapper errors (propertyNames, if/then, ...) carry no information of their own.
      return { kind: 'skip' };
  }
}

function compareOrder(a: Problem, b: Problem): number {
  const n = Math.min(a.order.length, b.order.length);
  for (let i = 0; i < n; i++) {
    const d = a.order[i]! - b.order[i]!;
    if (d !== 0) return d;
  }
  if (a.order.length !== b.order.length) return a.order.length - b.order.length;
  return a.rank - b.rank;
}

function describeErrors(operation: OperationName, body: Record<string, unknown>, errors: readonly ErrorObject[]): KmsError {
  const inputName = OPERATIONS[operation]?.input;
  const rootShape = inputName === undefined ? undefined : SHAPES[inputName];
  const serialization: Problem[] = [];
  const violations = new Map<string, Problem>();
  /** Collections of non-structure elements with failing elements: path → {location, hasNull}. */
  const collections = new Map<string, { loc: Location; hasNull: boolean; keys: boolean }>();

  for (const err of errors) {
    const segments = parsePointer(err.instancePath);
    if (err.keyword === 'required') segments.push(String(err.params['missingProperty']));
    const mapKeyError = err.propertyName !== undefined || err.keyword === 'propertyNames';
    const loc = locate(rootShape, body, segments);

    if (mapKeyError && loc.shape?.type === 'map') {
      if (err.keyword === 'propertyNames') continue;
      const c = classify(err, shapeOf(loc.shape.key), err.propertyName);
      const key = `${loc.awsPath}|keys`;
      if (c.kind === 'violation' && !collections.has(key)) collections.set(key, { loc, hasNull: false, keys: true });
      continue;
    }

    const element = loc.element;
    const targetShape = element !== undefined ? element.shape : loc.shape;
    const targetValue = element !== undefined ? element.value : loc.value;
    const c = classify(err, targetShape, targetValue);
    if (c.kind === 'skip') continue;
    if (c.kind === 'serialization') {
      const wirePath = element !== undefined ? element.wirePath : loc.wirePath;
      serialization.push({ order: loc.order, rank: 0, key: wirePath, text: () => serializationText(targetShape, wirePath) });
      continue;
    }
    if (element !== undefined) {
      const key = `${loc.awsPath}|elements`;
      const entry = collections.get(key) ?? { loc, hasNull: false, keys: false };
      if (c.rank === Rank.NotNull) entry.hasNull = true;
      collections.set(key, entry);
      continue;
    }
    const key = `${loc.awsPath}|${c.constraint}`;
    if (!violations.has(key)) {
      violations.set(key, {
        order: loc.order,
        rank: c.rank,
        key,
        text: () => `${valuePart(loc.shape, loc.value)} at '${loc.awsPath}' failed to satisfy constraint: ${c.constraint}`,
      });
    }
  }

  if (serialization.length > 0) {
    serialization.sort(compareOrder);
    return new KmsError('SerializationException', serialization[0]!.text());
  }

  for (const [key, { loc, hasNull, keys }] of collections) {
    const collection = loc.shape;
    let constraint: string;
    if (collection?.type === 'map') {
      const inner = allConstraints(shapeOf(keys ? collection.key : collection.value));
      if (hasNull) inner.push('Member must not be null');
      constraint = `${keys ? 'Map keys' : 'Map value'} must satisfy constraint: [${inner.join(', ')}]`;
    } else {
      const inner = allConstraints(shapeOf(collection?.member));
      if (hasNull) inner.push('Member must not be null');
      constraint = `Member must satisfy constraint: [${inner.join(', ')}]`;
    }
    violations.set(key, {
      order: loc.order,
      rank: Rank.Elements,
      key,
      text: () => `${valuePart(collection, loc.value)} at '${loc.awsPath}' failed to satisfy constraint: ${constraint}`,
    });
  }

  const list = [...violations.values()].sort(compareOrder);
  if (list.length === 0) {
    // Should not happen: ajv failed but nothing maps to an AWS message.
    return new KmsError('ValidationException', 'Request failed validation', {
      internalDetail: JSON.stringify(errors.map((e) => ({ keyword: e.keyword, instancePath: e.instancePath }))),
    });
  }
  const n = list.length;
  return new KmsError(
    'ValidationException',
    `${n} validation error${n === 1 ? '' : 's'} detected: ${list.map((p) => p.text()).join('; ')}`,
  );
}
