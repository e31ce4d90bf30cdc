import * as fs from 'node:fs';
import * as path from 'node:path';
import type { Logger } from 'pino';
import { syncDirectory, writeSynced } from '../durable-fs';
import { fingerprintOf, listPublicKeyFiles, PUBLIC_KEY_FILE, publicKeyFileOf } from './format';

export async function writeDurably(dir: string, name: string, data: Buffer): Promise<void> {
  const tmp = path.join(dir, `.${name}.tmp`);
  await writeSynced(tmp, data, 0o644);
  await fs.promises.rename(tmp, path.join(dir, name));
  await syncDirectory(dir);
}

/**
 * Publishes the current public key as audit-signing-public-key.pem and as the file of its
 * version; every earlier key stays beside them, for verifying old digests. A file that
 * held a different key (the token was replaced) is kept under its fingerprint.
 */
export function publishPublicKey(dir: string, key: { readonly publicKeyPem: string; readonly version: number }, log: Logger): void {
  const pem = key.publicKeyPem;
  for (const name of [publicKeyFileOf(key.version), PUBLIC_KEY_FILE]) {
    const file = path.join(dir, name);
    const existing = fs.existsSync(file) ? fs.readFileSync(file, 'utf8') : undefined;
    if (existing === pem) continue;
    if (existing !== undefined && !keptElsewhere(dir, existing, name)) {
      fs.renameSync(file, path.join(dir, `audit-signing-public-key-${fingerprintOf(existing).slice(0, 16)}.pem`));
      log.warn({ file }, 'audit signing key in the token changed; the previous public key was kept beside it');
    }
    fs.writeFileSync(file, pem, { mode: 0o644 });
  }
}

/** Is this public key also kept in a file other than `name` and audit-signing-public-key.pem? */
function keptElsewhere(dir: string, pem: string, name: string): boolean {
  return listPublicKeyFiles(dir)
    .filter((n) => n !== PUBLIC_KEY_FILE && n !== name)
    .some((n) => fs.readFileSync(path.join(dir, n), 'utf8') === pem);
}
