import type { AuditSink } from '../audit/event';
import type { ProvisionalRecord } from '../audit/outbox';
import type { Services } from '../operations';

/**
 * A service action's change (a sweeper's DeleteKey, RotateKey, expiry) and its record, through
 * the audit outbox: the change's transactions carry its record under `eventID`, and the record
 * written afterwards settles it.
 */

/** Runs `change` under `eventID`; nothing changed (undefined) or a failure settles it here. */
export async function changeCarryingRecord<T>(services: Services, eventID: string, provisional: ProvisionalRecord, change: () => Promise<T | undefined>): Promise<T | undefined> {
  const outbox = services.outbox;
  if (!outbox) return change();
  try {
    const outcome = await outbox.within(() => eventID, provisional, change);
    if (outcome === undefined) outbox.settle(eventID, true);
    return outcome;
  } catch (err) {
    // Whatever it committed (nothing, as a rule) stays in the outbox for delivery.
    outbox.settle(eventID, false);
    throw err;
  }
}

/** Writes the change's record. A trail failure cannot undo the change: its record stays in the outbox, written once the trail can be written again. */
export async function recordChange(services: Services, audit: AuditSink | undefined, event: Parameters<AuditSink['record']>[0], failure: { keyId: string; message: string }): Promise<void> {
  services.outbox?.crashPointForTests(event);
  const written = await (audit?.record(event) ?? Promise.resolve()).then(
    () => true,
    (err: unknown) => {
      services.log.error({ keyId: failure.keyId, err: (err as Error).message }, failure.message);
      return false;
    },
  );
  services.outbox?.settle(event.eventID, written);
}
