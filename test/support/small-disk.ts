import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';

/** A small filesystem of its own (tmpfs; the suite runs as root), so the disk can be filled. */
export function mountSmallDisk(size = '4m'): string {
  const disk = fs.mkdtempSync(path.join(os.tmpdir(), 'p11kms-small-disk-'));
  execFileSync('mount', ['-t', 'tmpfs', '-o', `size=${size}`, 'tmpfs', disk]);
  return disk;
}

export function unmountSmallDisk(disk: string): void {
  execFileSync('umount', [disk]);
  fs.rmdirSync(disk);
}

/** Writes `filler` until its filesystem is full (the write that failed said ENOSPC). */
export function fillDisk(filler: string): void {
  const fd = fs.openSync(filler, 'w');
  try {
    for (;;) fs.writeSync(fd, Buffer.alloc(4096));
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOSPC') throw err;
  } finally {
    fs.closeSync(fd);
  }
}
