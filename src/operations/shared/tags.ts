import { KmsError } from '../../errors';
import type { Tag } from '../../model/generated/types';
import type { TagRecord } from '../../store/records';

export const MAX_TAGS = 50;

/** AWS's tag rules beyond the model's length limits (TagException texts as recorded). */
export function validateTags(tags: readonly Tag[] | undefined): TagRecord[] {
  const list = tags ?? [];
  if (list.length > MAX_TAGS) throw new KmsError('TagException', 'Too many tags');
  const seen = new Set<string>();
  for (const tag of list) {
    if (tag.TagKey.toLowerCase().startsWith('aws:')) throw new KmsError('TagException', 'Tags beginning with aws: are reserved');
    if (seen.has(tag.TagKey)) throw new KmsError('TagException', 'Duplicate tag keys');
    seen.add(tag.TagKey);
  }
  return list.map((t) => ({ TagKey: t.TagKey, TagValue: t.TagValue })).sort((a, b) => a.TagKey.localeCompare(b.TagKey));
}
