import { readFileSync } from 'node:fs';
import { ConfigError } from './config-env.js';

/** reader: get, watch, ack, seal/open. admin: everything a reader may, plus writes. */
export type Role = 'reader' | 'admin';

/**
 * Who may do what, from a JSON file:
 *
 *   { "admin": ["cn:keyfleet-admin"], "reader": ["cn:*", "sha256:ab12…"] }
 *
 * An identity is `cn:<common name>` or `sha256:<lower-case hex fingerprint of
 * the client certificate>`; `cn:*` matches any certificate the server's CA
 * accepted. Admin implies reader.
 */
export interface ClientRoles {
  roleOf(identity: { commonName: string; fingerprintSha256: string }): Role | undefined;
}

const identityPattern = /^(cn:.{1,256}|sha256:[0-9a-f]{64})$/;

export function parseClientRoles(json: string, source = 'roles file'): ClientRoles {
  let parsed: unknown;
  try {
    parsed = JSON.parse(json);
  } catch {
    throw new ConfigError(source, 'is not valid JSON');
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
    throw new ConfigError(source, 'expected an object with "admin" and "reader" arrays');
  }
  const lists: Record<Role, Set<string>> = { admin: new Set(), reader: new Set() };
  for (const [role, members] of Object.entries(parsed)) {
    if (role !== 'admin' && role !== 'reader') throw new ConfigError(source, `unknown role "${role}"`);
    if (!Array.isArray(members)) throw new ConfigError(source, `"${role}" must be an array`);
    for (const member of members) {
      const normalised =
        typeof member === 'string'
          ? member
              .trim()
              .replace(/^sha256:(.*)$/, (_, hex: string) => `sha256:${hex.replaceAll(':', '').toLowerCase()}`)
          : '';
      if (!identityPattern.test(normalised)) {
        throw new ConfigError(source, `"${String(member)}" is not cn:<name> or sha256:<hex>`);
      }
      lists[role].add(normalised);
    }
  }
  const matches = (set: Set<string>, id: { commonName: string; fingerprintSha256: string }) =>
    set.has(`cn:${id.commonName}`) || set.has(`sha256:${id.fingerprintSha256}`) || set.has('cn:*');
  return {
    roleOf: (identity) =>
      matches(lists.admin, identity) ? 'admin' : matches(lists.reader, identity) ? 'reader' : undefined,
  };
}

export function loadClientRoles(path: string): ClientRoles {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch {
    throw new ConfigError('KEYFLEET_ROLES_FILE', `cannot read ${path}`);
  }
  return parseClientRoles(text, `KEYFLEET_ROLES_FILE (${path})`);
}
