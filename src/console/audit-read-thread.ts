import * as fs from 'node:fs';
import { parentPort } from 'node:worker_threads';
import { lookupEvents, type LookupRequest, verifyTrailChains, type VerifyRequest } from './audit-reads';

/** The thread of audit-reader.ts: one read at a time, in the order asked. */

export type AuditReadRequest = { id: number; kind: 'lookup'; request: LookupRequest } | { id: number; kind: 'verify'; request: VerifyRequest };
export type AuditReadAnswer = { id: number; value: unknown } | { id: number; error: string };

/**
 * Tests only (NODE_ENV=test): while the file P11KMS_TEST_AUDIT_READ_HOLD names exists, a read
 * blocks its thread before it starts, as a read of a long trail does (it says so by writing
 * `<file>.reading`); were reads on the event loop, no KMS request could be answered meanwhile.
 */
function holdWhileTestFileExists(): void {
  const file = process.env.NODE_ENV === 'test' ? process.env.P11KMS_TEST_AUDIT_READ_HOLD : undefined;
  if (!file || !fs.existsSync(file)) return;
  fs.writeFileSync(`${file}.reading`, '');
  const pause = new Int32Array(new SharedArrayBuffer(4));
  while (fs.existsSync(file)) Atomics.wait(pause, 0, 0, 20);
}

parentPort!.on('message', (message: AuditReadRequest) => {
  let answer: AuditReadAnswer;
  try {
    holdWhileTestFileExists();
    answer = { id: message.id, value: message.kind === 'lookup' ? lookupEvents(message.request) : verifyTrailChains(message.request) };
  } catch (err) {
    answer = { id: message.id, error: (err as Error).message };
  }
  parentPort!.postMessage(answer);
});
