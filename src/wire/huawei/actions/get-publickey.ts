import { createPublicKey } from 'node:crypto';
import { type Action, call, keyIdOf, keyRef } from './shared';

export const getPublicKey: Action = async (body, ctx, services) => {
  const out = await call('GetPublicKey', { KeyId: keyRef(body) }, ctx, services);
  const pem = createPublicKey({ key: Buffer.from(out.PublicKey!), format: 'der', type: 'spki' }).export({ type: 'spki', format: 'pem' });
  return { key_id: keyIdOf(out.KeyId), public_key: String(pem) };
};
