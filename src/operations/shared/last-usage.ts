import { SHAPES } from '../../model/generated/shapes';
import type { OperationName } from '../../model/generated/types';
import type { OperationHandler } from '../context';

/** The operations GetKeyLastUsage reports: the model's KeyLastUsageTrackingOperation enum. */
export const TRACKED_OPERATIONS: ReadonlySet<OperationName> = new Set((SHAPES.KeyLastUsageTrackingOperation.enum ?? []) as OperationName[]);

const KEY_ARN = /^arn:aws[a-z-]*:kms:([^:]+):\d{12}:key\/([0-9a-f-]{36}|mrk-[0-9a-f]{32})$/;

/**
 * Wraps a cryptographic operation so that each success records its key(s) as used (ReEncrypt:
 * source and destination). Failures, DryRun included, are not uses. Recording is in memory.
 */
export function trackingUsage<Op extends OperationName>(operation: Op, handler: OperationHandler<Op>): OperationHandler<Op> {
  return async (input, ctx, services) => {
    const output = await handler(input, ctx, services);
    const tracker = services.usage;
    if (tracker) {
      const out = output as { KeyId?: string; SourceKeyId?: string };
      for (const arn of [out.KeyId, out.SourceKeyId]) {
        const match = arn ? KEY_ARN.exec(arn) : null;
        if (match) tracker.record({ region: match[1], keyId: match[2] }, operation, ctx.requestId);
      }
    }
    return output;
  };
}
