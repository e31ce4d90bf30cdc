import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';

/** A new or renamed file's name is durable only once its directory is fsynced too. */
export async function syncDirectory(dir: string): Promise<void> {
  const handle = await fs.promises.open(dir, 'r');
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}

/** Writes `file` (created or truncated) whole and fsyncs it; returns its size. */
export async function writeSynced(file: string, content: string | Buffer | AsyncIterable<Buffer>, mode: number): Promise<number> {
  const handle = await fs.promises.open(file, 'w', mode);
  try {
    // writeFile on a handle writes until every byte of every chunk is down or fails: one write()
    // call may write less without an error when the disk is nearly full. write-file-atomic made
    // that single call and renamed the short file over metadata.json, which then would not parse.
    await fs.promises.writeFile(handle, content);
    await handle.sync();
    return (await handle.stat()).size;
  } finally {
    await handle.close();
  }
}

/**
 * Replaces `file` with `content` through `<file>.<random>.tmp` (written, fsynced, renamed over
 * it; removed on failure); returns the size. The caller fsyncs the directory when the new name
 * must be durable: a crash before that may leave the old file, never a part of the new one.
 */
export async function replaceFile(file: string, content: string | Buffer | AsyncIterable<Buffer>): Promise<number> {
  const temp = `${file}.${randomBytes(8).toString('hex')}.tmp`;
  try {
    const size = await writeSynced(temp, content, 0o600);
    await fs.promises.rename(temp, file);
    return size;
  } catch (err) {
    await fs.promises.rm(temp, { force: true }).catch(() => undefined);
    throw err;
  }
}

/** Replaces `file` crash-safely (replaceFile), then makes the new name durable; returns its size. */
export async function replaceFileDurably(file: string, content: string | Buffer | AsyncIterable<Buffer>): Promise<number> {
  const size = await replaceFile(file, content);
  await syncDirectory(path.dirname(file));
  return size;
}
