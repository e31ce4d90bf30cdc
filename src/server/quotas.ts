import { throttled } from '../errors';
import type { KeySpec, OperationName } from '../model/generated/types';
import type { RequestContext, Services } from '../operations/context';
import { findKey } from '../operations/shared/key-resolution';

/**
 * AWS's request-quota classes. The cryptographic classes are shared by the operations of one
 * account and region; `management` is a rate each management operation has on its own
 * (AWS gives each management API its own value; p11kms one configurable value for all).
 */
export const QUOTA_CLASSES = ['symmetric', 'rsa', 'ecc', 'generateRandom', 'management'] as const;
export type QuotaClass = (typeof QUOTA_CLASSES)[number];

/**
 * AWS's default values (requests per second, developer guide "Request quotas"): symmetric
 * 5,500 (the smallest regional value), RSA and ECC 1,000 each. GenerateRandom counts against the
 * symmetric quota on AWS; it has its own class here only when configured. Management
 * operations are 5 to 2,000 per API on AWS; 5 would stop scripted set-ups, so the one value
 * here is 50 (CreateGrant's).
 */
export const AWS_DEFAULT_QUOTAS: Readonly<Record<QuotaClass, number | undefined>> = {
  symmetric: 5_500,
  rsa: 1_000,
  ecc: 1_000,
  generateRandom: undefined,
  management: 50,
};

/** Operations counted against the cryptographic classes; their class follows the key's spec. */
const CRYPTOGRAPHIC = new Set<string>([
  'Encrypt', 'Decrypt', 'ReEncrypt', 'GenerateDataKey', 'GenerateDataKeyWithoutPlaintext', 'GenerateMac', 'VerifyMac',
  'Sign', 'Verify', 'DeriveSharedSecret', 'GenerateDataKeyPair', 'GenerateDataKeyPairWithoutPlaintext',
]);

/** A token bucket refilled continuously at `rate` per second, holding at most one second's worth. */
class Bucket {
  private tokens: number;
  private last: number;

  constructor(private readonly rate: number, now: number) {
    this.tokens = rate;
    this.last = now;
  }

  take(now: number): boolean {
    this.tokens = Math.min(this.rate, this.tokens + ((now - this.last) / 1000) * this.rate);
    this.last = now;
    if (this.tokens < 1) return false;
    this.tokens -= 1;
    return true;
  }
}

/**
 * Per-account, per-region request quotas. `admit` is called once per request, after
 * authentication and before the operation runs; over quota it throws ThrottlingException
 * (HTTP 400, AWS's text), which AWS SDKs retry with back-off.
 */
export class RequestQuotas {
  private readonly buckets = new Map<string, Bucket>();
  private readonly rates: Record<QuotaClass, number | undefined>;

  constructor(setting: 'aws' | Record<string, number>, private readonly now: () => number = () => performance.now()) {
    const overrides = setting === 'aws' ? {} : setting;
    for (const name of Object.keys(overrides)) {
      if (!(QUOTA_CLASSES as readonly string[]).includes(name)) throw new Error(`setting requestQuotas: unknown class '${name}' (known: ${QUOTA_CLASSES.join(', ')})`);
    }
    this.rates = { ...AWS_DEFAULT_QUOTAS, ...overrides };
  }

  async admit(operation: OperationName, input: unknown, ctx: RequestContext, services: Services): Promise<void> {
    const quotaClass = await this.classOf(operation, input, ctx, services);
    const rate = this.rates[quotaClass] ?? (quotaClass === 'generateRandom' ? this.rates.symmetric : undefined);
    if (rate === undefined) return;
    const shared = quotaClass === 'generateRandom' && this.rates.generateRandom === undefined ? 'symmetric' : quotaClass;
    const id = `${ctx.scope.accountId}/${ctx.scope.region}/${shared}${shared === 'management' ? `/${operation}` : ''}`;
    let bucket = this.buckets.get(id);
    if (!bucket) this.buckets.set(id, (bucket = new Bucket(rate, this.now())));
    if (!bucket.take(this.now())) throw throttled();
  }

  /** The key's spec decides the class of a cryptographic operation, as on AWS. */
  private async classOf(operation: OperationName, input: unknown, ctx: RequestContext, services: Services): Promise<QuotaClass> {
    if (operation === 'GenerateRandom') return 'generateRandom';
    if (!CRYPTOGRAPHIC.has(operation)) return 'management';
    const keyId = (input as { KeyId?: unknown; DestinationKeyId?: unknown } | undefined)?.KeyId;
    // Decrypt without KeyId names its key in a symmetric ciphertext; an unknown key fails
    // in the operation with its own error, so it counts as symmetric here.
    if (typeof keyId !== 'string') return 'symmetric';
    const spec = await findKey(services, ctx, keyId, true).then((k) => k.keySpec as KeySpec, () => undefined);
    if (spec?.startsWith('RSA_')) return 'rsa';
    if (spec?.startsWith('ECC_') || spec === 'SM2') return 'ecc';
    return 'symmetric';
  }
}
