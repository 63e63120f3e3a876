import { readFileSync } from 'node:fs';
import { ConfigError } from './config-env.js';

/**
 * What a grant on a ring allows. `reader`: the ring's parameters, key names,
 * states and times, never a secret. `node`: everything a reader may, plus the
 * ring's secrets (GetKeySet with secrets, WatchKeySet, AckKeySet, keyless
 * SealTicket/OpenTicket). A node grant implies the reader grant.
 */
export type Grant = 'reader' | 'node';

/** What a client certificate says about its holder, as the server saw it. */
export interface PeerIdentity {
  readonly commonName: string;
  /** Lower-case hex, no colons. */
  readonly fingerprintSha256: string;
  /** subjectAltName URIs (SPIFFE IDs). */
  readonly uris: readonly string[];
  /** subjectAltName DNS names. */
  readonly dnsNames: readonly string[];
}

/** What one caller may do. */
export interface Access {
  /** Every method on every ring. */
  readonly admin: boolean;
  /** The caller holds at least one grant (so may read staples). */
  readonly known: boolean;
  allows(grant: Grant, ring: string): boolean;
}

/**
 * Who may do what, from a JSON file whose keys are grants and whose values
 * list identities:
 *
 *   {
 *     "admin": ["cn:keyfleet-admin"],
 *     "node:edge": ["uri:spiffe://example.org/ns/edge/sa/nginx", "dns:edge-1.example.org"],
 *     "reader:edge": ["cn:edge-dashboard"],
 *     "staples": ["sha256:ab12…"]
 *   }
 *
 * Grants: `admin` (everything, every ring), `node:<ring>`, `reader:<ring>`,
 * `staples` (only certificates and staples, which any grant also allows).
 * Identities: `cn:<subject common name>`, `uri:<subjectAltName URI>`,
 * `dns:<subjectAltName DNS name>`, `sha256:<hex fingerprint of the
 * certificate>`. Only certificates that chain to the server's client CA are
 * matched at all. There is no wildcard: every identity is named.
 */
export interface ClientRoles {
  accessOf(identity: PeerIdentity): Access;
}

const identityPattern = /^(cn:.{1,256}|uri:[^\s]{1,1024}|dns:[A-Za-z0-9*.-]{1,253}|sha256:[0-9a-f]{64})$/;
const ringPattern = /^[a-z0-9][a-z0-9._-]{0,62}$/;

function normalise(member: unknown): string {
  if (typeof member !== 'string') return '';
  const trimmed = member.trim();
  const fingerprint = /^sha256:(.*)$/.exec(trimmed);
  if (fingerprint) return `sha256:${fingerprint[1]!.replaceAll(':', '').toLowerCase()}`;
  const dns = /^dns:(.*)$/.exec(trimmed);
  if (dns) return `dns:${dns[1]!.toLowerCase()}`;
  return trimmed;
}

function identitiesOf(peer: PeerIdentity): string[] {
  return [
    ...(peer.commonName ? [`cn:${peer.commonName}`] : []),
    `sha256:${peer.fingerprintSha256}`,
    ...peer.uris.map((uri) => `uri:${uri}`),
    ...peer.dnsNames.map((name) => `dns:${name.toLowerCase()}`),
  ];
}

const noAccess: Access = { admin: false, known: false, allows: () => false };

export function parseClientRoles(json: string, source = 'roles file'): ClientRoles {
  let parsed: unknown;
  try {
    parsed = JSON.parse(json);
  } catch {
    throw new ConfigError(source, 'is not valid JSON');
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
    throw new ConfigError(source, 'expected an object of grants, e.g. {"admin":[…],"node:<ring>":[…]}');
  }
  /** identity → the grants it holds ("admin", "staples", "node:<ring>", "reader:<ring>"). */
  const grantsOf = new Map<string, Set<string>>();
  for (const [grant, members] of Object.entries(parsed)) {
    const scoped = /^(node|reader):(.*)$/.exec(grant);
    if (grant === 'reader' || grant === 'node') {
      throw new ConfigError(source, `"${grant}" needs a ring: "${grant}:<ring>"`);
    }
    if (scoped && !ringPattern.test(scoped[2]!)) {
      throw new ConfigError(source, `"${grant}": "${scoped[2]}" is not a ring name`);
    }
    if (!scoped && grant !== 'admin' && grant !== 'staples') {
      throw new ConfigError(source, `unknown grant "${grant}" (admin, staples, node:<ring>, reader:<ring>)`);
    }
    if (!Array.isArray(members)) throw new ConfigError(source, `"${grant}" must be an array`);
    for (const member of members) {
      const identity = normalise(member);
      if (identity === 'cn:*') {
        throw new ConfigError(source, `"cn:*" is not allowed: name every identity`);
      }
      if (!identityPattern.test(identity)) {
        throw new ConfigError(
          source,
          `"${String(member)}" is not cn:<name>, uri:<uri>, dns:<name> or sha256:<hex>`,
        );
      }
      let grants = grantsOf.get(identity);
      if (!grants) grantsOf.set(identity, (grants = new Set()));
      grants.add(grant);
    }
  }
  return {
    accessOf(peer) {
      const held = new Set<string>();
      for (const identity of identitiesOf(peer)) {
        for (const grant of grantsOf.get(identity) ?? []) held.add(grant);
      }
      if (held.size === 0) return noAccess;
      const admin = held.has('admin');
      return {
        admin,
        known: true,
        allows: (grant, ring) =>
          admin || held.has(`node:${ring}`) || (grant === 'reader' && held.has(`reader:${ring}`)),
      };
    },
  };
}

/** Full access: the plain-text development mode, where there is no identity to check. */
export const adminAccess: Access = { admin: true, known: true, allows: () => true };

/**
 * The subjectAltName entries of a certificate as Node prints them
 * (`DNS:a, URI:spiffe://x/y, IP Address:…`; a value with a comma or quote is a
 * JSON string).
 */
export function subjectAltNames(text: string | undefined): { uris: string[]; dnsNames: string[] } {
  const uris: string[] = [];
  const dnsNames: string[] = [];
  if (!text) return { uris, dnsNames };
  const entry = /([A-Za-z ]+):("(?:[^"\\]|\\.)*"|[^,]*)(?:, |$)/g;
  for (const match of text.matchAll(entry)) {
    const kind = match[1]!.trim();
    let value = match[2]!;
    if (value.startsWith('"')) {
      try {
        value = JSON.parse(value) as string;
      } catch {
        continue;
      }
    }
    if (kind === 'URI') uris.push(value);
    else if (kind === 'DNS') dnsNames.push(value);
  }
  return { uris, dnsNames };
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
