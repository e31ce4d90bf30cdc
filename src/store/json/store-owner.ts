import * as fs from 'node:fs';
import { hostname } from 'node:os';
import * as path from 'node:path';

/**
 * Who holds a JSON store's directory lock, so that a live holder is never taken for a dead one.
 * The lock (proper-lockfile) counts as stale when its mtime has not been refreshed for a few
 * seconds: that lets a restart after kill -9 through, but also a second process while the
 * holder is alive and merely paused (SIGSTOP, a VM pause, a stalled event loop). Both then wrote
 * metadata.json, and the newcomer's start-up reconciliation took the holder's running creations
 * for dead ones. The holder's process identity (host, pid and the kernel's start time of that
 * pid, which a reused pid does not share) settles it on this host; elsewhere, or without /proc,
 * the lock's staleness decides as before.
 */
const OWNER_FILE = 'p11kms.lock.owner';

interface Owner {
  host: string;
  pid: number;
  /** Field 22 of /proc/<pid>/stat: when the process started, in clock ticks since boot. */
  started: string;
}

/** The process holding the store, when it is alive on this host. */
export function liveOwner(dataDir: string): Owner | undefined {
  let owner: Owner;
  try {
    owner = JSON.parse(fs.readFileSync(path.join(dataDir, OWNER_FILE), 'utf8')) as Owner;
  } catch {
    return undefined;
  }
  if (owner.host !== hostname() || owner.pid === process.pid) return undefined;
  const started = startTimeOf(owner.pid);
  return started !== undefined && started === owner.started ? owner : undefined;
}

/** Records this process as the holder (after it took the lock). */
export function recordOwner(dataDir: string): void {
  const started = startTimeOf(process.pid);
  if (started === undefined) return;
  const owner: Owner = { host: hostname(), pid: process.pid, started };
  fs.writeFileSync(path.join(dataDir, OWNER_FILE), JSON.stringify(owner), { mode: 0o600 });
}

export function forgetOwner(dataDir: string): void {
  fs.rmSync(path.join(dataDir, OWNER_FILE), { force: true });
}

function startTimeOf(pid: number): string | undefined {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    // The command name (field 2) may hold spaces and parentheses: count from its closing one.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    // A zombie (killed, not yet reaped by its parent) holds nothing any more.
    return fields[0] === 'Z' || fields[0] === 'X' ? undefined : fields[19];
  } catch {
    return undefined;
  }
}
