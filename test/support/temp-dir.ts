import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';

/** A fresh directory under the system temp dir, and a way to remove it. */
export function makeTempDir(prefix: string): { path: string; remove(): void } {
  const dir = mkdtempSync(path.join(tmpdir(), `keyfleet-${prefix}-`));
  return { path: dir, remove: () => rmSync(dir, { recursive: true, force: true }) };
}

/** A random prefix so tests sharing one Redis never see each other's keys. */
export function randomPrefix(label = 'test'): string {
  return `${label}-${Math.random().toString(36).slice(2, 10)}`;
}
