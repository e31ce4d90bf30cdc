import type { Tag } from '../../../model/generated/types';
import type { RequestContext, Services } from '../../../operations';
import { invalid } from '../errors';
import { type Action, call, HUAWEI_KEY_ID, text } from './shared';

// ---------------------------------------------------------------------------------------------
// Key tags (OTC kms_02_0046 add a tag, kms_02_0047 delete a tag, kms_02_0045 add or delete tags
// in batches, kms_02_0043 query a key's tags): TagResource / UntagResource / ListResourceTags.

/** A key carries at most 10 tags (kms_02_0043, kms_02_0045). */
const MAX_HUAWEI_TAGS = 10;
/** Characters a tag key or value must not contain: ASCII 0–31, *, <, >, \ and =. */
const TAG_FORBIDDEN = /[\u0000-\u001f*<>\\=]/;

/** key_id of the tag APIs: a path parameter, a key ID only. */
function pathKeyId(path: Record<string, string>): string {
  const id = path.key_id ?? '';
  if (!HUAWEI_KEY_ID.test(id)) throw invalid('KMS.0205');
  return id;
}

/** A tag key: 1–36 characters (KMS.0411), none of TAG_FORBIDDEN (KMS.0406). */
function checkTagKey(key: unknown): asserts key is string {
  if (typeof key !== 'string' || key.length === 0 || TAG_FORBIDDEN.test(key)) throw invalid('KMS.0406');
  if ([...key].length > 36) throw invalid('KMS.0411');
}

/** One TagItem: key 1–36 characters, value 0–43 characters (missing value: empty). */
function tagItem(item: unknown): Tag {
  if (!item || typeof item !== 'object' || Array.isArray(item)) throw invalid('KMS.0412', 'A tag is an object with key and value.');
  const { key, value } = item as { key?: unknown; value?: unknown };
  if (key === undefined || key === null) throw invalid('KMS.0204', 'tag key is required.');
  checkTagKey(key);
  const v = value === undefined || value === null ? '' : value;
  if (typeof v !== 'string' || TAG_FORBIDDEN.test(v)) throw invalid('KMS.0405');
  if ([...v].length > 43) throw invalid('KMS.0410');
  return { TagKey: key, TagValue: v };
}

async function tagsOf(keyId: string, ctx: RequestContext, services: Services): Promise<Tag[]> {
  const out: Tag[] = [];
  let marker: string | undefined;
  do {
    const page = await call('ListResourceTags', { KeyId: keyId, Limit: 50, Marker: marker }, ctx, services);
    out.push(...(page.Tags ?? []));
    marker = page.Truncated ? page.NextMarker : undefined;
  } while (marker);
  return out;
}

async function addTags(keyId: string, tags: Tag[], ctx: RequestContext, services: Services): Promise<void> {
  const keys = new Set((await tagsOf(keyId, ctx, services)).map((t) => t.TagKey));
  for (const t of tags) keys.add(t.TagKey);
  if (keys.size > MAX_HUAWEI_TAGS) throw invalid('KMS.0409', `A key has at most ${MAX_HUAWEI_TAGS}.`);
  await call('TagResource', { KeyId: keyId, Tags: tags }, ctx, services);
}

export const createKmsTag: Action = async (body, ctx, services, path) => {
  const keyId = pathKeyId(path);
  if (body.tag === undefined || body.tag === null) throw invalid('KMS.0204', 'tag is required.');
  await addTags(keyId, [tagItem(body.tag)], ctx, services);
  return {};
};

export const batchCreateKmsTags: Action = async (body, ctx, services, path) => {
  const keyId = pathKeyId(path);
  const action = text(body, 'action', true);
  if (action !== 'create' && action !== 'delete') throw invalid('KMS.0404', 'action must be create or delete.');
  if (body.tags === undefined || body.tags === null) throw invalid('KMS.0204', 'tags is required.');
  if (!Array.isArray(body.tags)) throw invalid('KMS.0412', 'tags must be an array.');
  if (body.tags.length === 0) throw invalid('KMS.0401');
  const tags = (body.tags as unknown[]).map(tagItem);
  if (action === 'create') await addTags(keyId, tags, ctx, services);
  // delete: tags are removed by key; their values are not compared.
  else await call('UntagResource', { KeyId: keyId, TagKeys: tags.map((t) => t.TagKey) }, ctx, services);
  return {};
};

export const deleteKmsTag: Action = async (_body, ctx, services, path) => {
  const keyId = pathKeyId(path);
  let tagKey: string;
  try {
    tagKey = decodeURIComponent(path.tag_key ?? '');
  } catch {
    throw invalid('KMS.0201');
  }
  checkTagKey(tagKey);
  await call('UntagResource', { KeyId: keyId, TagKeys: [tagKey] }, ctx, services);
  return {};
};

export const showKmsTags: Action = async (_body, ctx, services, path) => {
  const tags = await tagsOf(pathKeyId(path), ctx, services);
  return { tags: tags.map((t) => ({ key: t.TagKey, value: t.TagValue })), existTagsNum: tags.length, sys_tags: [] };
};
