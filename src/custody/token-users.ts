import * as fs from 'node:fs';
import * as path from 'node:path';
import { isLiveOtherProcess, type ProcessIdentity, thisProcess } from '../process-identity';

/**
 * The services using a data directory's token, whatever store they share: maintenance of the
 * embedded token's files (`p11kms token restore-set-aside`) must not run beside one, since a
 * running process loads files it did not reconcile at SoftHSM2's next scan. A JSON store's lock
 * names its one holder; processes sharing a PostgreSQL store (`--workers`, several services on
 * one host) hold nothing in the data directory but this record, one file per process, written
 * before the token is opened and removed once it is closed. A process killed outright leaves
 * its file behind: its identity tells that it is dead.
 */
const USERS_DIR = 'token-users';

/** Records this process as a user of the token under `dataDir`; the returned function ends it. */
export function recordTokenUser(dataDir: string): () => void {
  const me = thisProcess();
  if (!me) return () => undefined;
  const dir = path.join(dataDir, USERS_DIR);
  fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
  // Records of this host's dead processes would otherwise pile up, one per crash.
  for (const { file, user } of readUsers(dir)) if (user?.host === me.host && user.pid !== me.pid && !isLiveOtherProcess(user)) fs.rmSync(file, { force: true });
  const file = path.join(dir, `${me.host}.${me.pid}.json`);
  fs.writeFileSync(file, JSON.stringify(me), { mode: 0o600 });
  return () => fs.rmSync(file, { force: true });
}

/** The other processes of this host using the token under `dataDir` now. */
export function liveTokenUsers(dataDir: string): ProcessIdentity[] {
  return readUsers(path.join(dataDir, USERS_DIR))
    .flatMap(({ user }) => (user && isLiveOtherProcess(user) ? [user] : []))
    .sort((a, b) => a.pid - b.pid);
}

function readUsers(dir: string): Array<{ file: string; user?: ProcessIdentity }> {
  let names: string[];
  try {
    names = fs.readdirSync(dir).filter((name) => name.endsWith('.json'));
  } catch {
    return [];
  }
  return names.map((name) => {
    const file = path.join(dir, name);
    try {
      return { file, user: JSON.parse(fs.readFileSync(file, 'utf8')) as ProcessIdentity };
    } catch {
      // Removed meanwhile, or cut short by a crash while it was written: nobody to name.
      return { file };
    }
  });
}
