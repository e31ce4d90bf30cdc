import { type Action, call, description, keyRef } from './shared';

export const updateKeyDescription: Action = async (body, ctx, services) => {
  const keyId = keyRef(body, { idOnly: true });
  const desc = description(body, true)!;
  await call('UpdateKeyDescription', { KeyId: keyId, Description: desc }, ctx, services);
  return { key_info: { key_id: keyId, key_description: desc } };
};
