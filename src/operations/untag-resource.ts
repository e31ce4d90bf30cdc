import { KmsError } from '../errors';
import type { OperationHandler } from './context';
import { updateKey } from './shared/update-key';

/** Removes tags by key; a key that is not present is ignored, as on AWS. */
export const untagResource: OperationHandler<'UntagResource'> = async (input, ctx, services) => {
  for (const tagKey of input.TagKeys) {
    if (tagKey.toLowerCase().startsWith('aws:')) throw new KmsError('TagException', 'Tags beginning with aws: are reserved');
  }
  const remove = new Set(input.TagKeys);
  await updateKey(services, ctx, input.KeyId, { operation: 'UntagResource', states: 'manage', conditions: { tagKeys: input.TagKeys } }, (key) => {
    if (!key.tags.some((t) => remove.has(t.TagKey))) return key;
    return { ...key, tags: key.tags.filter((t) => !remove.has(t.TagKey)) };
  });
  return {};
};
