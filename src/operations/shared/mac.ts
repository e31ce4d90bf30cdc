import { incompatibleAlgorithm } from '../../errors';
import type { MacAlgorithmSpec } from '../../model/generated/types';
import type { KeyRecord } from '../../store/records';
import type { RequestContext, Services } from '../context';
import { macAlgorithmOf } from './algorithms';
import { loadKeyFor } from './key-resolution';

/**
 * What GenerateMac and VerifyMac check alike before the token is asked: the caller may use
 * the key to generate and verify MACs (kms:MacAlgorithm as a condition), and the key takes
 * the algorithm asked.
 */
export async function loadMacKey(services: Services, ctx: RequestContext, operation: 'GenerateMac' | 'VerifyMac', keyId: string, algorithm: MacAlgorithmSpec): Promise<KeyRecord> {
  const key = await loadKeyFor(services, ctx, keyId, { operation, usage: 'GENERATE_VERIFY_MAC', conditions: { macAlgorithm: algorithm } });
  requireMacAlgorithm(key, algorithm);
  return key;
}

/** An HMAC key takes exactly the algorithm of its spec (recorded message). */
export function requireMacAlgorithm(key: KeyRecord, algorithm: MacAlgorithmSpec): void {
  if (macAlgorithmOf(key.keySpec) !== algorithm) {
    throw incompatibleAlgorithm(algorithm, key.keySpec);
  }
}
