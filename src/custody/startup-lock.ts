import * as fs from 'node:fs';
import * as path from 'node:path';
import * as lockfile from 'proper-lockfile';

/**
 * Serialises C_Initialize → C_GetTokenInfo → C_Login (and the first-start creation of shared
 * token objects) across every process on one token: SoftHSM2 2.6.1 rewrites its token file
 * on each login after releasing its file lock, so a process reading token info meanwhile
 * sees an empty token (../shared/softhsm2-notes.md). The lock file sits beside the token
 * directory; a holder that died leaves it stale after 10 s.
 */
export async function withTokenLock<T>(dataDir: string, fn: () => Promise<T> | T): Promise<T> {
  fs.mkdirSync(dataDir, { recursive: true, mode: 0o700 });
  const release = await lockfile.lock(path.join(dataDir, 'tokens'), {
    lockfilePath: path.join(dataDir, 'tokens.lock'),
    realpath: false,
    stale: 10_000,
    update: 2_000,
    // Several processes start at once (--workers, a cluster restart): wait our turn.
    retries: { retries: 600, minTimeout: 50, maxTimeout: 200, factor: 1.2 },
  });
  try {
    return await fn();
  } finally {
    await release().catch(() => undefined);
  }
}
