import { type Action, call, hex, whole, zero } from './shared';

export const genRandom: Action = async (body, ctx, services) => {
  // random_data_length: bits, 8–8192 in multiples of 8 (Huawei Cloud "Generate a random number").
  const bits = whole(body, 'random_data_length', 'KMS.1801', true, [8, 8192], 8)!;
  const out = await call('GenerateRandom', { NumberOfBytes: bits / 8 }, ctx, services);
  try {
    return { random_data: hex(out.Plaintext!) };
  } finally {
    zero(out.Plaintext);
  }
};
