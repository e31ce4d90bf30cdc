import { type Action, call, keyRef, stateOf } from './shared';

export const enableKey: Action = async (body, ctx, services) => {
  const keyId = keyRef(body, { idOnly: true });
  await call('EnableKey', { KeyId: keyId }, ctx, services);
  return { key_info: { key_id: keyId, key_state: await stateOf(keyId, ctx, services) } };
};

export const disableKey: Action = async (body, ctx, services) => {
  const keyId = keyRef(body, { idOnly: true });
  await call('DisableKey', { KeyId: keyId }, ctx, services);
  return { key_info: { key_id: keyId, key_state: await stateOf(keyId, ctx, services) } };
};
