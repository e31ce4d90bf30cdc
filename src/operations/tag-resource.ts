import { KmsError } from '../errors';
import type { OperationHandler } from './context';
import { MAX_TAGS, validateTags } from './shared/tags';
import { updateKey } from './shared/update-key';

/** Adds or overwrites tags; the key ends with at most 50, kept sorted by tag key. */
export const tagResource: OperationHandler<'TagResource'> = async (input, ctx, services) => {
  const added = validateTags(input.Tags);
  await updateKey(services, ctx, input.KeyId, { operation: 'TagResource', states: 'manage', conditions: { requestTags: added } }, (key) => {
    const merged = new Map(key.tags.map((t) => [t.TagKey, t]));
    for (const t of added) merged.set(t.TagKey, t);
    if (merged.size > MAX_TAGS) throw new KmsError('TagException', 'Too many tags');
    return { ...key, tags: [...merged.values()].sort((a, b) => a.TagKey.localeCompare(b.TagKey)) };
  });
  return {};
};
