import * as fs from 'node:fs';
import type { Logger } from 'pino';

/**
 * Tests only (NODE_ENV=test): while the file P11KMS_TEST_HOLD_FENCED_COMMIT names exists, a
 * background duty's transaction that writes waits between its fence check and its COMMIT,
 * saying so in the log: a test ends the lock session and lets another node take the lock in
 * that window, which lasts a few milliseconds otherwise.
 */
const HOLD_FILE = process.env.NODE_ENV === 'test' ? process.env.P11KMS_TEST_HOLD_FENCED_COMMIT : undefined;

export async function holdFencedCommit(log: Logger): Promise<void> {
  if (HOLD_FILE === undefined || !fs.existsSync(HOLD_FILE)) return;
  log.warn('test hook: a background duty transaction waits between its fence check and its COMMIT');
  while (fs.existsSync(HOLD_FILE)) await new Promise((resolve) => setTimeout(resolve, 20));
}
