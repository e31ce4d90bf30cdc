import type { GrantOperation } from '../../model/generated/types';
import { ownValue } from '../own-properties';

// Grant operations in Huawei's names (create-grant, list-grants, error messages).

/** Huawei grant operations → AWS grant operations (OTC kms_02_0028). */
export const GRANT_OPERATIONS: Readonly<Record<string, GrantOperation>> = {
  'create-datakey': 'GenerateDataKey',
  'create-datakey-without-plaintext': 'GenerateDataKeyWithoutPlaintext',
  'encrypt-datakey': 'Encrypt',
  'decrypt-datakey': 'Decrypt',
  'describe-key': 'DescribeKey',
  'create-grant': 'CreateGrant',
  'retire-grant': 'RetireGrant',
  'encrypt-data': 'Encrypt',
  'decrypt-data': 'Decrypt',
};

/** AWS → Huawei: Encrypt and Decrypt each stand for two Huawei operations, both listed. */
const HUAWEI_OPERATIONS: Readonly<Record<string, readonly string[]>> = Object.entries(GRANT_OPERATIONS).reduce<Record<string, string[]>>((out, [h, a]) => {
  (out[a] ??= []).push(h);
  return out;
}, {});

/** The Huawei names of an AWS grant operation; operations Huawei has no name for (ReEncrypt, Sign …) keep their AWS name. */
export function huaweiOperationsOf(awsOperation: string): readonly string[] {
  return ownValue(HUAWEI_OPERATIONS, awsOperation) ?? [awsOperation];
}
