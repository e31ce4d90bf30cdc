import { execFileSync } from 'node:child_process';

/** A Python 3 interpreter that imports boto3 (scripts/run.sh installs Debian's python3-boto3), if any. */
export function pythonWithBoto3(): string | undefined {
  for (const candidate of ['python3', '/usr/bin/python3']) {
    try {
      execFileSync(candidate, ['-c', 'import boto3'], { stdio: 'ignore' });
      return candidate;
    } catch {
      // try the next interpreter
    }
  }
  return undefined;
}
