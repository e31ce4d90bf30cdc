import { type Action, aliasesByKey, call, keyInfo, keyRef } from './shared';

export const describeKey: Action = async (body, ctx, services) => {
  const { KeyMetadata: m } = await call('DescribeKey', { KeyId: keyRef(body) }, ctx, services);
  const aliases = await aliasesByKey(ctx, services, m!.KeyId);
  return { key_info: keyInfo(m!, aliases.get(m!.KeyId), ctx.scope.region) };
};
