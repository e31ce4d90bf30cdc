import type { OperationHandler } from './context';
import { loadKeyFor } from './shared/key-resolution';
import { paginate } from './shared/pagination';

/** The key's tags sorted by tag key; Limit 1–50 (default 50) and Marker paging. */
export const listResourceTags: OperationHandler<'ListResourceTags'> = async (input, ctx, services) => {
  const key = await loadKeyFor(services, ctx, input.KeyId, { operation: 'ListResourceTags', allowedStates: 'any' });
  const sorted = [...key.tags].sort((a, b) => a.TagKey.localeCompare(b.TagKey));
  const { page, NextMarker, Truncated } = paginate(sorted, (t) => t.TagKey, input.Limit !== undefined ? Math.min(input.Limit, 50) : undefined, input.Marker, 50);
  return { Tags: page.map((t) => ({ TagKey: t.TagKey, TagValue: t.TagValue })), ...(NextMarker ? { NextMarker } : {}), Truncated };
};
