/**
 * Conversion between the AWS JSON 1.1 wire representation and the typed model shapes.
 *
 * - decodeInput (after validateInput): blobs base64 string → Buffer, timestamps epoch seconds →
 *   Date, at any depth. Returns new structure objects holding only model members (unknown members
 *   and JSON nulls are dropped); the body is not mutated.
 * - encodeOutput: Buffer/Uint8Array → base64 string, Date → epoch seconds (millisecond fraction
 *   kept, e.g. 1700000000.123). Member order is kept as given; undefined/null and members not in
 *   the model are dropped.
 *
 * Both are driven by per-shape plans computed once from SHAPES by one planner; they differ only
 * in how a blob and a timestamp are converted. Lists and maps whose elements need no conversion
 * are passed through by reference (never mutated here).
 */
import { OPERATIONS, SHAPES, type ShapeDef } from '../../model/generated/shapes';
import type { OperationName, OperationShapes } from '../../model/generated/types';
import { setOwn } from '../own-properties';

type Convert = (value: unknown) => unknown;


function shapeDef(name: string): ShapeDef {
  const s = SHAPES[name];
  if (s === undefined) throw new Error(`codec: unknown shape ${name}`);
  return s;
}

/** How one direction converts the two shape types that differ between wire and model. */
interface Leaves {
  blob(shape: ShapeDef): Convert;
  timestamp: Convert;
}

/**
 * Builds (and caches) the conversion for a shape; null means the value needs no conversion.
 * Structures are always rebuilt so that only model members survive, in the order given.
 */
class Planner {
  private readonly plans = new Map<string, Convert | null>();
  private readonly byOperation = new Map<string, Convert>();

  constructor(private readonly leaves: Leaves) {}

  forOperation(operation: OperationName, shape: string | undefined): Convert {
    let plan = this.byOperation.get(operation);
    if (plan === undefined) {
      plan = shape === undefined ? emptyPlan : (this.plan(shape) ?? emptyPlan);
      this.byOperation.set(operation, plan);
    }
    return plan;
  }

  private plan(name: string): Convert | null {
    if (this.plans.has(name)) return this.plans.get(name)!;
    const s = shapeDef(name);
    let plan: Convert | null;
    switch (s.type) {
      case 'blob':
        plan = this.leaves.blob(s);
        break;
      case 'timestamp':
        plan = this.leaves.timestamp;
        break;
      case 'list': {
        const el = this.plan(s.member!.shape);
        plan = el === null ? null : (v) => (Array.isArray(v) ? v.map((x) => el(x)) : v);
        break;
      }
      case 'map': {
        const val = this.plan(s.value!.shape);
        plan =
          val === null
            ? null
            : (v) => {
                if (typeof v !== 'object' || v === null) return v;
                const out: Record<string, unknown> = {};
                // Map keys come from the client: "__proto__" must stay a key (own-properties.ts).
                for (const k of Object.keys(v)) setOwn(out, k, val((v as Record<string, unknown>)[k]));
                return out;
              };
        break;
      }
      case 'structure': {
        // Member → conversion (null: copy as is); members not in the map are dropped.
        const members = new Map<string, Convert | null>();
        for (const m of Object.keys(s.members ?? {})) members.set(m, this.plan(s.members![m]!.shape));
        plan = (v) => {
          if (typeof v !== 'object' || v === null) return v;
          const src = v as Record<string, unknown>;
          const out: Record<string, unknown> = {};
          const keys = Object.keys(src);
          for (let i = 0; i < keys.length; i++) {
            const k = keys[i]!;
            const x = src[k];
            if (x === undefined || x === null) continue;
            const convert = members.get(k);
            if (convert === undefined) continue;
            out[k] = convert === null ? x : convert(x);
          }
          return out;
        };
        break;
      }
      default:
        plan = null;
    }
    this.plans.set(name, plan);
    return plan;
  }
}

const emptyPlan: Convert = () => ({});

// ---------------------------------------------------------------------------------------------
// Decode (wire → model)
// ---------------------------------------------------------------------------------------------

const decodeBlob: Convert = (v) => (typeof v === 'string' ? Buffer.from(v, 'base64') : v);

/**
 * Sensitive blobs (plaintext, private keys) get their own memory instead of a slice of Node's
 * shared Buffer pool, so zeroing the Buffer after use wipes the only decoded copy and its
 * `.buffer` never exposes unrelated data.
 */
const decodeSensitiveBlob: Convert = (v) => {
  if (typeof v !== 'string') return v;
  const out = Buffer.allocUnsafeSlow(Buffer.byteLength(v, 'base64'));
  const written = out.write(v, 'base64');
  return written === out.length ? out : out.subarray(0, written);
};

const decoder = new Planner({
  blob: (shape) => (shape.sensitive === true ? decodeSensitiveBlob : decodeBlob),
  timestamp: (v) => (typeof v === 'number' ? new Date(Math.round(v * 1000)) : v),
});

/**
 * Converts a validated request body into the model input type of `operation`: blobs become
 * Buffers, timestamps Dates, unknown members and nulls are dropped. Does not mutate `body`.
 */
export function decodeInput<Op extends OperationName>(operation: Op, body: Record<string, unknown>): OperationShapes[Op]['input'] {
  return decoder.forOperation(operation, OPERATIONS[operation]?.input)(body) as OperationShapes[Op]['input'];
}

// ---------------------------------------------------------------------------------------------
// Encode (model → wire)
// ---------------------------------------------------------------------------------------------

const encodeBlob: Convert = (v) => {
  if (Buffer.isBuffer(v)) return v.toString('base64');
  if (v instanceof Uint8Array) return Buffer.from(v.buffer, v.byteOffset, v.byteLength).toString('base64');
  return v;
};

const encoder = new Planner({
  blob: () => encodeBlob,
  timestamp: (v) => (v instanceof Date ? v.getTime() / 1000 : v),
});

/**
 * Converts an operation result into its JSON wire form: Buffers/Uint8Arrays become base64
 * strings, Dates epoch seconds. Keeps the given member order; drops undefined/null members and
 * members the model does not define for the output. Operations without an output give `{}`.
 */
export function encodeOutput<Op extends OperationName>(operation: Op, output: OperationShapes[Op]['output']): Record<string, unknown> {
  return encoder.forOperation(operation, OPERATIONS[operation]?.output)(output ?? {}) as Record<string, unknown>;
}
