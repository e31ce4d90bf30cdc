import { isMultiRegion } from '../store/records';
import type { OperationHandler } from './context';
import { describedKey } from './shared/key-metadata';
import { loadKeyFor } from './shared/key-resolution';

export const describeKey: OperationHandler<'DescribeKey'> = async (input, ctx, services) => {
  const key = await loadKeyFor(services, ctx, input.KeyId, { operation: 'DescribeKey', states: 'any' });
  const regions = isMultiRegion(key) ? await services.store.listKeyRegions(key.keyId) : [key];
  return { KeyMetadata: await describedKey(services, key, regions) };
};
