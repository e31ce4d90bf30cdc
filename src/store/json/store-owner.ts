import * as fs from 'node:fs';
import * as path from 'node:path';
import { isLiveOtherProcess, type ProcessIdentity, thisProcess } from '../../process-identity';

/**
 * Who holds a JSON store's directory lock, so that a live holder is never taken for a dead one.
 * The lock (proper-lockfile) counts as stale when its mtime has not been refreshed for a few
 * seconds: that lets a restart after kill -9 through, but also a second process while the
 * holder is alive and merely paused (SIGSTOP, a VM pause, a stalled event loop). Both then wrote
 * metadata.json, and the newcomer's start-up reconciliation took the holder's running creations
 * for dead ones. The holder's process identity settles it on this host; elsewhere, or without
 * /proc, the lock's staleness decides as before.
 */
const OWNER_FILE = 'p11kms.lock.owner';

/** The process holding the store, when it is alive on this host. */
export function liveOwner(dataDir: string): ProcessIdentity | undefined {
  let owner: ProcessIdentity;
  try {
    owner = JSON.parse(fs.readFileSync(path.join(dataDir, OWNER_FILE), 'utf8')) as ProcessIdentity;
  } catch {
    return undefined;
  }
  return isLiveOtherProcess(owner) ? owner : undefined;
}

/** Records this process as the holder (after it took the lock). */
export function recordOwner(dataDir: string): void {
  const owner = thisProcess();
  if (owner) fs.writeFileSync(path.join(dataDir, OWNER_FILE), JSON.stringify(owner), { mode: 0o600 });
}

export function forgetOwner(dataDir: string): void {
  fs.rmSync(path.join(dataDir, OWNER_FILE), { force: true });
}
