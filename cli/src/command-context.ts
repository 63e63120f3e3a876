import type { Command } from 'commander';
import type { Output } from './output.js';
import { serviceClients, type ServiceClients } from './clients.js';
import { createOutput } from './output.js';
import { readLocalFleetConfig } from './local-fleet.js';

/** What every command gets: the clients, the output, the deadline, the clock. */
export interface CommandContext {
  readonly clients: ServiceClients;
  readonly output: Output;
  readonly timeoutMs: number;
  readonly clock: () => number;
  readonly env: NodeJS.ProcessEnv;
}

interface GlobalOptions {
  ticketKeys: string;
  ocspFetch: string;
  json: boolean;
  timeoutMs: string;
}

/**
 * Builds the context from the root command's options: flags, then env, then
 * the running local fleet's client config (npm start), then the defaults.
 */
export function commandContext(command: Command, env: NodeJS.ProcessEnv): CommandContext {
  const options = command.optsWithGlobals<GlobalOptions>();
  const timeoutMs = Number(options.timeoutMs);
  if (!Number.isInteger(timeoutMs) || timeoutMs < 100)
    throw new Error('--timeout-ms must be a whole number ≥ 100');
  const localFleet = readLocalFleetConfig(env);
  let root: Command = command;
  while (root.parent) root = root.parent;
  const address = (option: 'ticketKeys' | 'ocspFetch') =>
    localFleet && root.getOptionValueSource(option) === 'default' ? localFleet[option] : options[option];
  return {
    clients: serviceClients(
      { ticketKeys: address('ticketKeys'), ocspFetch: address('ocspFetch'), timeoutMs },
      env,
      localFleet,
    ),
    output: createOutput(options.json),
    timeoutMs,
    clock: Date.now,
    env,
  };
}

/** Parses a whole number option, naming the option when it is not one. */
export function integerOption(name: string) {
  return (text: string): number => {
    if (!/^\d+$/.test(text)) throw new Error(`${name} expects a whole number, got "${text}"`);
    return Number(text);
  };
}

/** Parses a 16-byte key name given as 32 hex digits. */
export function keyNameArgument(text: string): Buffer {
  if (!/^[0-9a-fA-F]{32}$/.test(text)) throw new Error(`a key name is 32 hex digits, got "${text}"`);
  return Buffer.from(text, 'hex');
}
