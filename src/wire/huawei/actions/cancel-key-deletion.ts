import { type Action, call, keyRef, stateOf } from './shared';

export const cancelKeyDeletion: Action = async (body, ctx, services) => {
  const keyId = keyRef(body, { idOnly: true });
  await call('CancelKeyDeletion', { KeyId: keyId }, ctx, services);
  return { key_id: keyId, key_state: await stateOf(keyId, ctx, services) };
};
