import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { Command } from 'commander';
import { createProgram } from './program.js';

function allCommands(command: Command): Command[] {
  return [command, ...command.commands.flatMap(allCommands)];
}

const program = createProgram({});
const names = allCommands(program).map((command) => command.name());

test('every command the issue asks for exists', () => {
  for (const name of [
    'status',
    'rotate',
    'revoke',
    'ring',
    'put',
    'list',
    'staple',
    'register',
    'get',
    'watch',
    'export',
    'sync',
    'nginx',
    'haproxy',
    'files',
    'kek',
    'rewrap',
  ]) {
    assert.ok(names.includes(name), name);
  }
});

test('every command has a description and --help', () => {
  for (const command of allCommands(program)) {
    assert.ok(command.description().length > 10, `${command.name()} has a description`);
    assert.match(command.helpInformation(), /-h, --help/, `${command.name()} --help`);
  }
});

test('--json and the service addresses are global options, with env fallbacks', () => {
  const help = program.helpInformation();
  assert.match(help, /--json/);
  assert.match(help, /KEYFLEET_TICKET_KEYS_ADDRESS/);
  assert.match(help, /KEYFLEET_OCSP_FETCH_ADDRESS/);
});

test('bad arguments are refused before any call is made', async () => {
  const failing = (argv: string[]) => {
    const fresh = createProgram({});
    for (const command of allCommands(fresh))
      command.exitOverride().configureOutput({ writeErr: () => undefined });
    return fresh.parseAsync(['node', 'keyfleet', ...argv]);
  };
  await assert.rejects(failing(['rotate']), /missing required argument/);
  await assert.rejects(failing(['rotate', 'edge', '--expected-epoch', 'x']), /expects a whole number/);
  await assert.rejects(failing(['sync', 'nginx', '--ring', 'edge']), /--key-dir/);
  await assert.rejects(failing(['nope']), /unknown command/);
});
