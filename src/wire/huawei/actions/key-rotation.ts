import type { RequestContext, Services } from '../../../operations';
import { KmsError } from '../../../errors';
import { invalid } from '../errors';
import { type Action, call, keyRef, text } from './shared';

// ---------------------------------------------------------------------------------------------
// Rotation (OTC kms_02_0038 enable, kms_02_0039 disable, kms_02_0040 update interval, kms_02_0041
// status): EnableKeyRotation / DisableKeyRotation / GetKeyRotationStatus / ListKeyRotations.

/** rotation_interval: Huawei accepts 30–365 days; AWS's RotationPeriodInDays (and p11kms) 90–2560. */
const HUAWEI_INTERVAL: [number, number] = [30, 365];
const AWS_MIN_ROTATION_DAYS = 90;

/** AWS refuses rotation for keys it cannot rotate; Huawei names imported keys specifically (KMS.0312). */
async function rotating<T>(keyId: string, ctx: RequestContext, services: Services, op: () => Promise<T>): Promise<T> {
  try {
    return await op();
  } catch (err) {
    if (err instanceof KmsError && err.name === 'UnsupportedOperationException') {
      const { KeyMetadata: m } = await call('DescribeKey', { KeyId: keyId }, ctx, services);
      if (m?.Origin === 'EXTERNAL') throw invalid('KMS.0312');
      throw invalid('KMS.0308', 'Only symmetric (AES_256) keys can be rotated.');
    }
    throw err;
  }
}

export const enableKeyRotation: Action = async (body, ctx, services) => {
  const keyId = keyRef(body, { idOnly: true });
  // Huawei's default interval is 365 days, as is AWS's default rotation period.
  await rotating(keyId, ctx, services, () => call('EnableKeyRotation', { KeyId: keyId }, ctx, services));
  return {};
};

export const disableKeyRotation: Action = async (body, ctx, services) => {
  const keyId = keyRef(body, { idOnly: true });
  await rotating(keyId, ctx, services, () => call('DisableKeyRotation', { KeyId: keyId }, ctx, services));
  return {};
};

export const updateKeyRotationInterval: Action = async (body, ctx, services) => {
  const keyId = keyRef(body, { idOnly: true });
  const raw = text(body, 'rotation_interval', true);
  const days = /^\d{1,4}$/.test(raw) ? Number(raw) : NaN;
  if (!(days >= HUAWEI_INTERVAL[0] && days <= HUAWEI_INTERVAL[1])) throw invalid('KMS.0308', 'rotation_interval must be an integer from 30 to 365.');
  const status = await rotating(keyId, ctx, services, () => call('GetKeyRotationStatus', { KeyId: keyId }, ctx, services));
  if (!status.KeyRotationEnabled) throw invalid('KMS.0313');
  if (days < AWS_MIN_ROTATION_DAYS) {
    throw invalid('KMS.0308', `rotation_interval ${days} is not supported: p11kms rotates at most every ${AWS_MIN_ROTATION_DAYS} days (AWS KMS's RotationPeriodInDays 90–2560).`);
  }
  await rotating(keyId, ctx, services, () => call('EnableKeyRotation', { KeyId: keyId, RotationPeriodInDays: days }, ctx, services));
  return {};
};

export const getKeyRotationStatus: Action = async (body, ctx, services) => {
  const keyId = keyRef(body, { idOnly: true });
  const status = await rotating(keyId, ctx, services, () => call('GetKeyRotationStatus', { KeyId: keyId }, ctx, services));
  let count = 0;
  let last: Date | undefined;
  let marker: string | undefined;
  do {
    const page = await call('ListKeyRotations', { KeyId: keyId, Limit: 1000, Marker: marker }, ctx, services);
    for (const r of page.Rotations ?? []) {
      if (!r.RotationDate) continue;
      count += 1;
      if (!last || r.RotationDate > last) last = r.RotationDate;
    }
    marker = page.Truncated ? page.NextMarker : undefined;
  } while (marker);
  return {
    key_rotation_enabled: status.KeyRotationEnabled === true,
    // With rotation off AWS keeps no period to report: Huawei's default (365) is shown.
    rotation_interval: status.RotationPeriodInDays ?? 365,
    last_rotation_time: last ? String(last.getTime()) : '',
    number_of_rotations: count,
  };
};
