import { lookup as dnsLookup, type LookupAddress } from 'node:dns';
import net from 'node:net';
import { ConfigError } from '@keyfleet/service-kit';

/**
 * Where OCSP fetches may not go unless an allow-list names the address: a
 * registered chain's AIA URL is chosen by whoever registers it, so without
 * this the refresher would probe (and report on) the internal network.
 * Loopback, private (RFC 1918, unique-local), link-local (cloud metadata at
 * 169.254.169.254 and fd00:ec2::254 included), shared (100.64/10),
 * "this network", multicast and reserved ranges.
 */
const forbidden = new net.BlockList();
for (const [network, prefix] of [
  ['0.0.0.0', 8],
  ['10.0.0.0', 8],
  ['100.64.0.0', 10],
  ['127.0.0.0', 8],
  ['169.254.0.0', 16],
  ['172.16.0.0', 12],
  ['192.0.0.0', 24],
  ['192.168.0.0', 16],
  ['198.18.0.0', 15],
  ['224.0.0.0', 4],
  ['240.0.0.0', 4],
] as const) {
  forbidden.addSubnet(network, prefix, 'ipv4');
}
for (const [network, prefix] of [
  ['::', 128],
  ['::1', 128],
  ['fc00::', 7],
  ['fe80::', 10],
  ['ff00::', 8],
] as const) {
  forbidden.addSubnet(network, prefix, 'ipv6');
}

/** An IPv4-mapped IPv6 address (::ffff:a.b.c.d) is checked as the IPv4 address it is. */
function normalise(address: string): { address: string; family: 'ipv4' | 'ipv6' } {
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(address);
  if (mapped) return { address: mapped[1]!, family: 'ipv4' };
  return { address, family: net.isIPv6(address) ? 'ipv6' : 'ipv4' };
}

/** Which responder addresses are allowed although forbidden: CIDRs from configuration. */
export interface ResponderAddressPolicy {
  /** Undefined when the address may be fetched from; else why not. */
  refusal(address: string): string | undefined;
}

/** Parses "127.0.0.1/32, 10.1.0.0/16, ::1/128" (a bare address is a single host). */
export function responderAddressPolicy(
  allowed: readonly string[],
  source = 'allowedResponderNetworks',
): ResponderAddressPolicy {
  const allowList = new net.BlockList();
  for (const entry of allowed) {
    const [network, prefixText] = entry.trim().split('/');
    const family = net.isIPv4(network ?? '') ? 'ipv4' : net.isIPv6(network ?? '') ? 'ipv6' : undefined;
    const max = family === 'ipv4' ? 32 : 128;
    const prefix = prefixText === undefined ? max : Number(prefixText);
    if (!family || !Number.isInteger(prefix) || prefix < 0 || prefix > max) {
      throw new ConfigError(source, `"${entry}" is not an address or CIDR network`);
    }
    allowList.addSubnet(network!, prefix, family);
  }
  return {
    refusal(raw) {
      const { address, family } = normalise(raw);
      if (!forbidden.check(address, family) || allowList.check(address, family)) return undefined;
      return `responder address ${address} is loopback, private, link-local or reserved; not on the allow-list`;
    },
  };
}

/** The error a refused lookup fails with (its code is the fetch's short reason). */
export class ForbiddenResponderAddress extends Error {
  readonly code = 'EFORBIDDENADDRESS';
}

type LookupCallback = (
  error: NodeJS.ErrnoException | null,
  address: string | LookupAddress[],
  family?: number,
) => void;

/**
 * A `lookup` for http.request that resolves the host name and refuses the
 * connection unless every address it resolves to is allowed, then connects
 * to exactly the address it checked (no second resolution a rebinding DNS
 * server could answer differently).
 */
export function guardedLookup(policy: ResponderAddressPolicy) {
  return (hostname: string, options: { all?: boolean; family?: number }, callback: LookupCallback): void => {
    dnsLookup(hostname, { all: true, family: options.family ?? 0 }, (error, addresses) => {
      if (error) return callback(error, '');
      const refused = addresses.map((entry) => policy.refusal(entry.address)).find((reason) => reason);
      if (refused || addresses.length === 0) {
        return callback(new ForbiddenResponderAddress(refused ?? 'no address'), '');
      }
      if (options.all) return callback(null, addresses);
      return callback(null, addresses[0]!.address, addresses[0]!.family);
    });
  };
}
