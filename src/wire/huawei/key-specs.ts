import type { KeySpec, KeyUsageType } from '../../model/generated/types';
import { ownValue } from '../own-properties';

// Key specs in Huawei's names (create-key, key_info of describe-key / list-keys, error messages).

/** Huawei key_spec → AWS KeySpec, and the key usages each allows (create-key, kms_02_0012). */
export const HUAWEI_SPECS: Readonly<Record<string, { spec: KeySpec; usages: readonly KeyUsageType[] }>> = {
  AES_256: { spec: 'SYMMETRIC_DEFAULT', usages: ['ENCRYPT_DECRYPT'] },
  RSA_2048: { spec: 'RSA_2048', usages: ['SIGN_VERIFY', 'ENCRYPT_DECRYPT'] },
  RSA_3072: { spec: 'RSA_3072', usages: ['SIGN_VERIFY', 'ENCRYPT_DECRYPT'] },
  RSA_4096: { spec: 'RSA_4096', usages: ['SIGN_VERIFY', 'ENCRYPT_DECRYPT'] },
  EC_P256: { spec: 'ECC_NIST_P256', usages: ['SIGN_VERIFY'] },
  EC_P384: { spec: 'ECC_NIST_P384', usages: ['SIGN_VERIFY'] },
};

const AWS_TO_HUAWEI_SPEC: Readonly<Record<string, string>> = Object.fromEntries(Object.entries(HUAWEI_SPECS).map(([h, { spec }]) => [spec, h]));

/** An AWS KeySpec by its Huawei name; specs Huawei has no name for (HMAC_256, ECC_SECG_P256K1 … made through AWS) keep theirs. */
export function huaweiSpecOf(awsSpec: string): string {
  return ownValue(AWS_TO_HUAWEI_SPEC, awsSpec) ?? awsSpec;
}
