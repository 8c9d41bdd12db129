/**
 * Client addresses and network lists: parsing, normalisation and CIDR matching,
 * all through ipaddr.js so no address arithmetic is written by hand.
 */
import ipaddr from 'ipaddr.js';

export type IpFamily = 4 | 6;

/** Four decimal parts, each 0-255 without leading zeros (no octal, hex or short forms). */
const DOTTED_QUAD = /^(?:(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)\.){3}(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)$/;

/**
 * Only these characters can spell an address. A module constant: a regular expression literal in
 * a function body is a new RegExp object each time it runs (no /g, so sharing one is safe).
 */
const ADDRESS_CHARACTERS = /^[0-9a-fA-F:.]+$/;

/** A validated client IP in canonical text form. */
export interface ClientIp {
  /** Canonical text: dotted quad, or RFC 5952 compressed lower-case IPv6. */
  readonly text: string;
  readonly family: IpFamily;
  readonly parsed: ipaddr.IPv4 | ipaddr.IPv6;
  /** Its reverse name once reverseName() has built it (kept on the record, not in a WeakMap). */
  arpa?: string;
}

/**
 * `::ffff:0:0/96`. ipaddr.js' own isIPv4MappedAddress() classifies the address against every
 * special range it knows first, which was most of the cost of parsing a new client's address.
 */
function isIPv4Mapped(address: ipaddr.IPv6): boolean {
  const { parts } = address;
  return parts[0] === 0 && parts[1] === 0 && parts[2] === 0 && parts[3] === 0 && parts[4] === 0 && parts[5] === 0xffff;
}

/**
 * An IPv6 text with its trailing dotted quad (RFC 4291 §2.2 form 3) written as two hex groups.
 * ipaddr.js reads any `::a.b.c.d` as `::ffff:a.b.c.d`, which would make the IPv4-compatible
 * `::198.51.100.1` the IPv4 host 198.51.100.1. A malformed quad is left for the parse to refuse.
 */
function withHexTail(text: string): string {
  if (!text.includes('.')) return text;
  const colon = text.lastIndexOf(':');
  const quad = text.slice(colon + 1);
  if (!DOTTED_QUAD.test(quad)) return text;
  const [a = 0, b = 0, c = 0, d = 0] = quad.split('.').map(Number);
  return `${text.slice(0, colon + 1)}${((a << 8) | b).toString(16)}:${((c << 8) | d).toString(16)}`;
}

/**
 * Parse a client address as Postfix sends it. `::ffff:a.b.c.d` is the IPv4 client
 * `a.b.c.d` (SPEC "What is checked"): its PTR lives in in-addr.arpa and its forward
 * record is an A record. Every other embedding of a dotted quad — the deprecated IPv4-compatible
 * `::a.b.c.d` that glibc's inet_ntop (and so Postfix) prints for `::/96`, `64:ff9b::a.b.c.d`, … —
 * is an IPv6 address and is looked up in ip6.arpa: ipaddr.js' parse() would read `::a.b.c.d`
 * as IPv4-mapped, so the family is decided here from the parts alone (RFC 4291 §2.5.5).
 * Zone ids (`fe80::1%eth0`) and anything else non-numeric are refused.
 */
export function parseClientIp(text: string): ClientIp | undefined {
  if (text.length === 0 || text.length > 64 || !ADDRESS_CHARACTERS.test(text)) return undefined;
  let parsed: ipaddr.IPv4 | ipaddr.IPv6;
  // Decide the family by shape first: ipaddr.js' checks work by throwing and catching, which is
  // costly when the other family is tried first. An IPv6 address is parsed once, not checked
  // with isValid() and then parsed again (isValid() is that same parse in a try).
  if (!text.includes(':')) {
    if (!DOTTED_QUAD.test(text)) return undefined;
    parsed = ipaddr.IPv4.parse(text);
  } else {
    let v6: ipaddr.IPv6;
    try {
      v6 = ipaddr.IPv6.parse(withHexTail(text));
    } catch {
      return undefined;
    }
    parsed = isIPv4Mapped(v6) ? v6.toIPv4Address() : v6;
  }
  return {
    text: parsed.kind() === 'ipv4' ? parsed.toString() : (parsed as ipaddr.IPv6).toRFC5952String(),
    family: parsed.kind() === 'ipv4' ? 4 : 6,
    parsed,
    arpa: undefined,
  };
}

/** Canonical text of an address from DNS, for exact comparison with a client IP; undefined if not an address. */
export function canonicalAddress(text: string): string | undefined {
  return parseClientIp(text)?.text;
}

/**
 * The reverse-lookup name of an address: RFC 1035 §3.5 in-addr.arpa, RFC 3596 §2.5 ip6.arpa.
 * Built once per client record (the daemon reuses one ClientIp per address). Kept on the record
 * rather than in a WeakMap: a WeakMap entry per new client cost ~2 µs and ephemeron work in
 * every collection (`npm run bench:handler -- --cold`).
 */
export function reverseName(ip: ClientIp): string {
  return (ip.arpa ??= buildReverseName(ip));
}

function buildReverseName(ip: ClientIp): string {
  if (ip.family === 4) {
    const [a, b, c, d] = (ip.parsed as ipaddr.IPv4).octets;
    return [d, c, b, a, 'in-addr.arpa'].join('.');
  }
  // The sixteen bytes last to first, each as its two nibbles low first ("f.4." for 0x4f), from
  // the eight 16-bit groups: one array and the name, where a nibble array and a byte array were
  // ~2 KB of garbage per new IPv6 client. join() makes the name one flat string (it is hashed as
  // a cache key).
  const { parts } = ip.parsed as ipaddr.IPv6;
  const labels = new Array<string>(17);
  for (let group = 7, at = 0; group >= 0; group--) {
    const value = parts[group] ?? 0;
    labels[at++] = REVERSED_BYTE[value & 0xff] as string;
    labels[at++] = REVERSED_BYTE[value >> 8] as string;
  }
  labels[16] = 'ip6.arpa';
  return labels.join('');
}

/** Each byte's two nibbles as ip6.arpa labels, low nibble first: REVERSED_BYTE[0x4f] = "f.4.". */
const REVERSED_BYTE: readonly string[] = Array.from({ length: 256 }, (_, byte) => `${(byte & 0x0f).toString(16)}.${(byte >> 4).toString(16)}.`);

/** A parsed network in CIDR form, kept with the text the admin wrote. */
export interface Network {
  readonly text: string;
  readonly range: [ipaddr.IPv4 | ipaddr.IPv6, number];
}

/** Parse `a.b.c.d/n`, `v6/n` or a bare address (a host route); undefined if invalid. */
export function parseNetwork(text: string): Network | undefined {
  try {
    const slash = text.indexOf('/');
    // An IPv6 network's dotted-quad tail is rewritten first, as for a client (withHexTail).
    const range =
      slash === -1 ? undefined : text.includes(':') ? ipaddr.IPv6.parseCIDR(`${withHexTail(text.slice(0, slash))}${text.slice(slash)}`) : ipaddr.IPv4.parseCIDR(text);
    if (range) {
      // `::ffff:a.b.c.d/N` (N ≥ 96) is the IPv4 network a.b.c.d/(N−96): clients in it are judged
      // as IPv4 by then (parseClientIp), so as an IPv6 network it would silently never match.
      const [base, bits] = range;
      if (base.kind() === 'ipv6' && isIPv4Mapped(base as ipaddr.IPv6) && bits >= 96) {
        return { text, range: [(base as ipaddr.IPv6).toIPv4Address(), bits - 96] };
      }
      return { text, range };
    }
    const host = parseClientIp(text);
    if (!host) return undefined;
    return { text, range: [host.parsed, host.family === 4 ? 32 : 128] };
  } catch {
    return undefined;
  }
}

/**
 * True when the address lies in one of the networks (IPv4-mapped addresses match IPv4 networks).
 * The daemon remembers the answer for skip_networks in its client record (src/daemon/daemon.ts).
 */
export function inNetworks(ip: ClientIp, networks: readonly Network[]): boolean {
  for (const network of networks) {
    const [base] = network.range;
    if (base.kind() === ip.parsed.kind() && ip.parsed.match(network.range)) return true;
  }
  return false;
}
