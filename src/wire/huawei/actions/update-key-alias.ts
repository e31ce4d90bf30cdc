import { type Action, aliasName, AWS_ALIAS_PREFIX, call, keyRef } from './shared';

export const updateKeyAlias: Action = async (body, ctx, services) => {
  const keyId = keyRef(body, { idOnly: true });
  const name = aliasName(body);
  const { KeyMetadata: m } = await call('DescribeKey', { KeyId: keyId }, ctx, services);
  const current = await call('ListAliases', { KeyId: m!.KeyId, Limit: 100 }, ctx, services);
  const names = (current.Aliases ?? []).map((a) => a.AliasName!);
  if (!names.includes(name)) {
    await call('CreateAlias', { AliasName: name, TargetKeyId: m!.KeyId }, ctx, services);
    // The alias Huawei reports for the key (the first by name) is the one replaced.
    if (names.length > 0) await call('DeleteAlias', { AliasName: names[0] }, ctx, services);
  }
  return { key_info: { key_id: m!.KeyId, key_alias: name.slice(AWS_ALIAS_PREFIX.length) } };
};
