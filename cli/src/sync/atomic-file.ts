import { randomBytes } from 'node:crypto';
import { open, readFile, rename, unlink } from 'node:fs/promises';
import path from 'node:path';

/**
 * Replaces `filePath` with `data` so a reader (nginx on reload, HAProxy at
 * start) sees either the old file or the new one, never a torn one: write a
 * temporary file in the same directory, fsync it, rename it over the target,
 * fsync the directory so the rename survives a crash. Returns false, and
 * touches nothing, when the file already holds exactly `data`, so callers
 * reload their terminator only on a real change.
 */
export async function writeFileAtomic(
  filePath: string,
  data: Uint8Array,
  options: { modeOctal?: number } = {},
): Promise<boolean> {
  const current = await readFile(filePath).catch(() => undefined);
  if (current && Buffer.compare(current, data) === 0) return false;
  const dir = path.dirname(filePath);
  const tempPath = path.join(dir, `.${path.basename(filePath)}.${randomBytes(6).toString('hex')}.tmp`);
  // Secrets: owner-only from the first byte, not chmod'ed afterwards.
  const handle = await open(tempPath, 'wx', options.modeOctal ?? 0o600);
  try {
    await handle.writeFile(data);
    await handle.sync();
  } catch (error) {
    await handle.close();
    await unlink(tempPath).catch(() => undefined);
    throw error;
  }
  await handle.close();
  try {
    await rename(tempPath, filePath);
  } catch (error) {
    await unlink(tempPath).catch(() => undefined);
    throw error;
  }
  const dirHandle = await open(dir, 'r');
  try {
    await dirHandle.sync();
  } finally {
    await dirHandle.close();
  }
  return true;
}

/** Removes `filePath`; true when there was a file to remove. */
export async function removeFileIfPresent(filePath: string): Promise<boolean> {
  try {
    await unlink(filePath);
    return true;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return false;
    throw error;
  }
}
