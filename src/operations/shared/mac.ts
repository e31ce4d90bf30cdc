import { incompatibleAlgorithm } from '../../errors';
import type { MacAlgorithmSpec } from '../../model/generated/types';
import type { KeyRecord } from '../../store/records';
import { macAlgorithmOf } from './algorithms';

/** An HMAC key takes exactly the algorithm of its spec (recorded message). */
export function requireMacAlgorithm(key: KeyRecord, algorithm: MacAlgorithmSpec): void {
  if (macAlgorithmOf(key.keySpec) !== algorithm) {
    throw incompatibleAlgorithm(algorithm, key.keySpec);
  }
}
