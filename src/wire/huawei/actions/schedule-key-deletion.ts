import { type Action, call, KEY_STATE, keyIdOf, keyRef, whole } from './shared';

export const scheduleKeyDeletion: Action = async (body, ctx, services) => {
  const keyId = keyRef(body, { idOnly: true });
  // Huawei documents 7–1096 days (KMS.1401 outside). The value goes to the AWS operation,
  // which keeps AWS KMS's 7–30: its refusal is answered with KMS.1401 too (../errors.ts).
  const days = whole(body, 'pending_days', 'KMS.1401', true, [7, 1096])!;
  const out = await call('ScheduleKeyDeletion', { KeyId: keyId, PendingWindowInDays: days }, ctx, services);
  return { key_id: keyIdOf(out.KeyId), key_state: KEY_STATE[out.KeyState ?? 'PendingDeletion'] };
};
