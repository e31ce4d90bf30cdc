import type { KeyUsageType } from '../../../model/generated/types';
import { KmsError } from '../../../errors';
import { ownValue } from '../../own-properties';
import { HuaweiError, invalid } from '../errors';
import { HUAWEI_SPECS } from '../key-specs';
import { type Action, aliasName, call, description, text } from './shared';

export const createKey: Action = async (body, ctx, services) => {
  const name = aliasName(body);
  const huaweiSpec = text(body, 'key_spec') ?? 'AES_256';
  // An own entry only: key_spec "constructor" or "toString" is an unknown spec, not a table member.
  const mapping = ownValue(HUAWEI_SPECS, huaweiSpec);
  if (!mapping) {
    throw invalid('KMS.0308', `key_spec ${huaweiSpec} is not supported: this key store serves ${Object.keys(HUAWEI_SPECS).join(', ')} (SM2 and SM4 have no mechanism in the token).`);
  }
  const usage = (text(body, 'key_usage') ?? mapping.usages[0]) as KeyUsageType;
  if (!mapping.usages.includes(usage)) throw invalid('KMS.0308', `key_usage ${usage} is not valid for key_spec ${huaweiSpec}.`);
  const origin = text(body, 'origin') ?? 'kms';
  if (origin !== 'kms' && origin !== 'external') throw invalid('KMS.0308', 'origin must be kms or external.');
  const desc = description(body, false);
  // The alias is checked first so that a duplicate alias does not leave a key behind.
  const taken = await call('DescribeKey', { KeyId: name }, ctx, services).then(
    () => true,
    (err: unknown) => {
      if (err instanceof KmsError && err.name === 'NotFoundException') return false;
      throw err;
    },
  );
  if (taken) throw new HuaweiError('KMS.1104', 'Duplicate key aliases.');
  const { KeyMetadata: m } = await call(
    'CreateKey',
    { Description: desc, KeySpec: mapping.spec, KeyUsage: usage, ...(origin === 'external' ? { Origin: 'EXTERNAL' as const } : {}) },
    ctx,
    services,
  );
  const keyId = m!.KeyId;
  try {
    await call('CreateAlias', { AliasName: name, TargetKeyId: keyId }, ctx, services);
  } catch (err) {
    // Lost a race for the alias: the new key is unreachable by name, so it is retired.
    await call('ScheduleKeyDeletion', { KeyId: keyId, PendingWindowInDays: 7 }, ctx, services).catch(() => undefined);
    throw err;
  }
  return { key_info: { key_id: keyId, domain_id: m!.AWSAccountId ?? ctx.scope.accountId } };
};
