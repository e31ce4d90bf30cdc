import * as fs from 'node:fs';
import { hostname } from 'node:os';

/**
 * A process as other processes on this host can recognise it later: host, pid and the kernel's
 * start time of that pid, which a reused pid does not share. Files naming a holder of something
 * (a JSON store's lock, a token's data directory) record it, so a live holder is never taken
 * for a dead one, nor a dead one (kill -9) for a live one.
 */
export interface ProcessIdentity {
  host: string;
  pid: number;
  /** Field 22 of /proc/<pid>/stat: when the process started, in clock ticks since boot. */
  started: string;
}

/** This process, or undefined where /proc does not tell start times. */
export function thisProcess(): ProcessIdentity | undefined {
  const started = startTimeOf(process.pid);
  return started === undefined ? undefined : { host: hostname(), pid: process.pid, started };
}

/** Whether `other` is another process, alive on this host (elsewhere nothing can be told). */
export function isLiveOtherProcess(other: ProcessIdentity): boolean {
  if (other.host !== hostname() || other.pid === process.pid) return false;
  const started = startTimeOf(other.pid);
  return started !== undefined && started === other.started;
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
