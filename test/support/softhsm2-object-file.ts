import * as fs from 'node:fs';
import * as path from 'node:path';
import { isUnfinished } from '../../src/custody/softhsm2-files';

/** Builds a SoftHSM2 2.6 object file: generation, then (type, kind, value) records. */
export function objectFile(records: Array<[number, 1 | 2 | 3, Buffer | number | boolean]>): Buffer {
  const parts: Buffer[] = [Buffer.alloc(8)];
  for (const [type, kind, value] of records) {
    const head = Buffer.alloc(16);
    head.writeBigUInt64BE(BigInt(type), 0);
    head.writeBigUInt64BE(BigInt(kind), 8);
    parts.push(head);
    if (kind === 1) parts.push(Buffer.from([value ? 0xff : 0]));
    else if (kind === 2) {
      const v = Buffer.alloc(8);
      v.writeBigUInt64BE(BigInt(value as number));
      parts.push(v);
    } else {
      const length = Buffer.alloc(8);
      length.writeBigUInt64BE(BigInt((value as Buffer).length));
      parts.push(length, value as Buffer);
    }
  }
  return Buffer.concat(parts);
}

/**
 * Object files in a SoftHSM2 token directory beyond the objects PKCS#11 shows (empty, cut-off
 * or half-built files a crash or a race left): each file is one object, token.object is the
 * token itself. Nothing for a token of another kind (no SoftHSM2 token directory).
 */
export function objectFilesBeyond(dataDir: string, visibleObjects: number): string[] {
  const tokens = path.join(dataDir, 'tokens');
  const tokenDirs = fs.readdirSync(tokens, { withFileTypes: true }).filter((d) => d.isDirectory() && fs.existsSync(path.join(tokens, d.name, 'token.object')));
  if (tokenDirs.length === 0) return [];
  const files = tokenDirs.flatMap((t) =>
    fs.readdirSync(path.join(tokens, t.name)).filter((f) => f.endsWith('.object') && f !== 'token.object').map((f) => path.join(tokens, t.name, f)),
  );
  if (files.length === visibleObjects) return [];
  // For the failure report: each file's size, age and whether start-up's clean-up would call it unfinished.
  const described = files.map((f) => {
    const stat = fs.statSync(f);
    return `${path.basename(f)} ${stat.size} B, modified ${stat.mtime.toISOString()}${isUnfinished(fs.readFileSync(f)) ? ', unfinished' : ''}`;
  });
  return [`${files.length} object files for ${visibleObjects} objects`, ...described];
}
