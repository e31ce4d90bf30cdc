import type { TagRecord } from '../store/records';
import type { OperationHandler } from './context';
import { loadKeyFor } from './shared/key-resolution';
import { listOrder, paginate } from './shared/pagination';

const BY_TAG_KEY = listOrder(['string'], (t: TagRecord) => [t.TagKey]);

/** The key's tags sorted by tag key; Limit 1–50 (default 50) and Marker paging. */
export const listResourceTags: OperationHandler<'ListResourceTags'> = async (input, ctx, services) => {
  const key = await loadKeyFor(services, ctx, input.KeyId, { operation: 'ListResourceTags', states: 'any' });
  const { page, NextMarker, Truncated } = paginate('ListResourceTags', key.tags, BY_TAG_KEY, input);
  return { Tags: page.map((t) => ({ TagKey: t.TagKey, TagValue: t.TagValue })), ...(NextMarker ? { NextMarker } : {}), Truncated };
};
