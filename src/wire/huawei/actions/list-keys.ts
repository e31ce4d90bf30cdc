import type { KeyMetadata } from '../../../model/generated/types';
import { KmsError } from '../../../errors';
import { invalid } from '../errors';
import { type Action, aliasesByKey, call, keyInfo, STATE_BY_CODE, text, whole } from './shared';

export const listKeys: Action = async (body, ctx, services) => {
  // limit: entries per page; marker: the start position, a non-negative integer given as
  // next_marker (kms_02_0017); key_state: ^[1-5]{1}$.
  const limit = whole(body, 'limit', 'KMS.1601', false, [1, 1000]) ?? 1000;
  const offset = whole(body, 'marker', 'KMS.1602', false, [0, 999_999]) ?? 0;
  const state = text(body, 'key_state');
  if (state !== undefined && !/^[1-5]$/.test(state)) throw invalid('KMS.0308', 'key_state must match ^[1-5]{1}$.');
  const ids: string[] = [];
  let marker: string | undefined;
  do {
    const page = await call('ListKeys', { Limit: 1000, Marker: marker }, ctx, services);
    for (const k of page.Keys ?? []) if (k.KeyId) ids.push(k.KeyId);
    marker = page.Truncated ? page.NextMarker : undefined;
  } while (marker);
  const metadata = await Promise.all(
    ids.map((id) =>
      call('DescribeKey', { KeyId: id }, ctx, services).then(
        (out) => out.KeyMetadata,
        // A key deleted by the sweeper between the two calls is simply not listed.
        (err: unknown) => {
          if (err instanceof KmsError && err.name === 'NotFoundException') return undefined;
          throw err;
        },
      ),
    ),
  );
  const wanted = state === undefined ? undefined : STATE_BY_CODE[state];
  const matching = metadata.filter((m): m is KeyMetadata => m !== undefined && (!wanted || wanted.includes(m.KeyState!)));
  const aliases = await aliasesByKey(ctx, services);
  const page = matching.slice(offset, offset + limit);
  const truncated = offset + limit < matching.length;
  return {
    keys: page.map((m) => m.KeyId),
    key_details: page.map((m) => keyInfo(m, aliases.get(m.KeyId), ctx.scope.region)),
    next_marker: truncated ? String(offset + limit) : '',
    truncated: truncated ? 'true' : 'false',
    total: matching.length,
  };
};
