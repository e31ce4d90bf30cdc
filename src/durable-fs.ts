import * as fs from 'node:fs';

/** A new or renamed file's name is durable only once its directory is fsynced too. */
export async function syncDirectory(dir: string): Promise<void> {
  const handle = await fs.promises.open(dir, 'r');
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}
