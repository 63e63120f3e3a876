import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { reloadOnChange } from './reload-command.js';

test('a failed reload is owed: the next apply reloads even with no file changed, until one works', async () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'reload-'));
  try {
    const outcome = path.join(dir, 'outcome');
    const runs = path.join(dir, 'runs');
    writeFileSync(outcome, '1');
    writeFileSync(runs, '');
    // Appends one line per run and exits with the status written in `outcome`.
    const reload = reloadOnChange(['sh', '-c', `echo run >> '${runs}'; exit $(cat '${outcome}')`]);
    assert.equal(await reload([]), undefined, 'nothing changed, nothing owed');
    assert.equal((await reload(['key-0.key']))?.ok, false);
    writeFileSync(outcome, '0');
    assert.equal((await reload([]))?.ok, true, 'owed after the failure');
    assert.equal(await reload([]), undefined, 'paid: nothing owed any more');
    assert.equal(readFileSync(runs, 'utf8').split('\n').filter(Boolean).length, 2);
    assert.equal(await reloadOnChange([])(['key-0.key']), undefined, 'no command, no reload');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
