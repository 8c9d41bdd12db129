/**
 * The kinds of value a key can take — a duration, a count, a list of networks, an action, a
 * listen address, host names, … — each one small validator that reads the text and says what is
 * allowed when it cannot, paired with how `config` prints the value back. The key table
 * (keys.ts) says which kind each key is; a new key of a known kind needs no code here.
 */
import ipaddr from 'ipaddr.js';
import { parseNetwork, type Network } from '../util/ip.js';
import { hostnameProblem, normaliseName } from '../util/hostname.js';
import { ACTIONS, type Action, type ThrottleRate } from './presets.js';
import { checkPasswordFilePath, parseThrottleStore, type ThrottleStoreTarget } from './throttle-store-url.js';
import { formatDuration, parseDuration, printable, splitList } from './parse.js';

export type ListenAddress =
  | { kind: 'tcp'; host: string; port: number }
  | { kind: 'unix'; path: string };

export type HostPort = { host: string; port: number };

export type Failure = { error: string };
export type Parsed<T> = T | Failure;
const fail = (error: string): Failure => ({ error });
export const isFailure = (value: unknown): value is Failure =>
  typeof value === 'object' && value !== null && 'error' in value && Object.keys(value).length === 1;

/** One kind of value: the validator, and the text `config` prints for a valid value. */
export interface Kind<T> {
  parse(raw: string): Parsed<T>;
  show(value: T): string;
}

const same = (value: string): string => value;
const joined = (items: readonly string[]): string => items.join(', ');
const hostPortText = ({ host, port }: HostPort): string => (host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`);

export function duration(min: number, max: number): Kind<number> {
  return {
    parse: (raw) => {
      const ms = parseDuration(raw);
      if (ms === undefined) return fail('expected a duration such as 30s, 5m, 1h or 2d (a bare number is seconds)');
      return ms < min || ms > max ? fail(`must be between ${formatDuration(min)} and ${formatDuration(max)}`) : ms;
    },
    show: formatDuration,
  };
}

export function count(min: number, max: number): Kind<number> {
  return {
    parse: (raw) => {
      if (!/^\d{1,10}$/.test(raw)) return fail(`expected a whole number from ${min} to ${max}`);
      const value = Number(raw);
      return value < min || value > max ? fail(`expected a whole number from ${min} to ${max}`) : value;
    },
    show: String,
  };
}

export function oneOf<T extends string>(allowed: readonly T[]): Kind<T> {
  return {
    parse: (raw) => {
      const lower = raw.toLowerCase();
      return (allowed as readonly string[]).includes(lower) ? (lower as T) : fail(`expected one of: ${allowed.join(', ')}`);
    },
    show: same,
  };
}

export const fileMode: Kind<number> = {
  parse: (raw) => (/^0?[0-7]{3}$/.test(raw) ? parseInt(raw, 8) : fail('expected an octal mode such as 0660')),
  show: (mode) => `0${mode.toString(8)}`,
};

export const yesNo: Kind<boolean> = {
  parse: (raw) => {
    const lower = raw.toLowerCase();
    if (lower === 'yes' || lower === 'true' || lower === 'on') return true;
    if (lower === 'no' || lower === 'false' || lower === 'off') return false;
    return fail('expected yes or no');
  },
  show: (value) => (value ? 'yes' : 'no'),
};

export const networks: Kind<readonly Network[]> = {
  parse: (raw) => {
    const list: Network[] = [];
    for (const item of splitList(raw)) {
      const network = parseNetwork(item);
      if (!network) return fail(`"${printable(item)}" is not an address or CIDR network (e.g. 192.0.2.0/24, 2001:db8::/32)`);
      const meant = networkAddress(network);
      // Postfix warns on "non-null host address bits" (cidr_match.c) and uses the network; here it
      // is an error: a file cut mid-line (192.0.2.128/2 for /25) would otherwise quietly cover a
      // quarter of IPv4.
      if (meant !== undefined) return fail(`"${printable(item)}" has host bits set: write the network ${meant}, or fix the prefix length`);
      list.push(network);
    }
    return list;
  },
  show: (list) => joined(list.map((network) => network.text)),
};

/** The network a CIDR with host bits set stands for (`a.b.c.d/N` with those bits cleared), or undefined when none are set. */
function networkAddress(network: Network): string | undefined {
  const [base, bits] = network.range;
  const bytes = base.toByteArray();
  const masked = bytes.map((byte, index) => {
    const keep = Math.min(8, Math.max(0, bits - index * 8));
    return byte & ((0xff << (8 - keep)) & 0xff);
  });
  if (masked.every((byte, index) => byte === bytes[index])) return undefined;
  const address = ipaddr.fromByteArray(masked);
  const text = address.kind() === 'ipv6' ? (address as ipaddr.IPv6).toRFC5952String() : address.toString();
  return `${text}/${bits}`;
}

function parseHostPort(raw: string, defaultPort?: number, minPort = 1): Parsed<HostPort> {
  const bracketed = /^\[([0-9A-Fa-f:.]+)\](?::(\d{1,5}))?$/.exec(raw);
  const plain = /^([^\s:[\]]+)(?::(\d{1,5}))?$/.exec(raw);
  const match = bracketed ?? plain;
  if (!match) return fail('expected host:port or [ipv6]:port');
  const host = match[1] ?? '';
  const portText = match[2];
  if (portText === undefined && defaultPort === undefined) return fail('a port is required (host:port or [ipv6]:port)');
  const port = portText === undefined ? (defaultPort ?? 0) : Number(portText);
  if (!Number.isInteger(port) || port < minPort || port > 65535) return fail(`port must be ${minPort} to 65535`);
  if (bracketed && parseNetwork(host) === undefined) return fail(`"${printable(host)}" is not an IPv6 address`);
  return { host, port };
}

export const listenAddress: Kind<ListenAddress> = {
  parse: (raw) => {
    if (raw.startsWith('unix:')) {
      const path = raw.slice('unix:'.length);
      if (!path.startsWith('/')) return fail('unix: needs an absolute path, e.g. unix:/var/spool/postfix/private/fcrdns-policyd');
      return { kind: 'unix', path };
    }
    // Port 0 binds any free port (tests; the bound port is logged at start-up).
    const hostPort = parseHostPort(raw, undefined, 0);
    if (isFailure(hostPort)) return fail(`${hostPort.error}, or unix:/path`);
    return { kind: 'tcp', ...hostPort };
  },
  show: (listen) => (listen.kind === 'unix' ? `unix:${listen.path}` : hostPortText(listen)),
};

/** host:port, or empty for off. */
export const optionalHostPort: Kind<HostPort | undefined> = {
  // Port 0 binds any free port (tests; the bound address is logged at start-up).
  parse: (raw) => (raw === '' ? undefined : parseHostPort(raw, undefined, 0)),
  show: (value) => (value ? hostPortText(value) : ''),
};

export const dnsServers: Kind<readonly string[]> = {
  parse: (raw) => {
    const servers: string[] = [];
    for (const item of splitList(raw)) {
      const hostPort = parseHostPort(item, 53);
      if (isFailure(hostPort)) return fail(`"${printable(item)}": ${hostPort.error}`);
      // c-ares talks to addresses, not names: a name here could not be resolved without DNS.
      if (parseNetwork(hostPort.host) === undefined) return fail(`"${printable(item)}" must be an IP address, not a name`);
      servers.push(hostPortText(hostPort));
    }
    return servers;
  },
  show: joined,
};

/**
 * A `*_action` override: empty leaves the check/mode preset. The temporary-failure class may
 * not reject (SPEC "Decision"). `config` prints the effective action instead (build.ts).
 */
export function actionOverride(allowReject: boolean): Kind<Action | undefined> {
  // temperror_action: a temporary DNS failure says nothing about the sender, so it is neither
  // rejected nor throttled (issue 27: "never for temperror_action").
  const allowed = allowReject ? ACTIONS : ACTIONS.filter((item) => item !== 'reject' && item !== 'throttle');
  return {
    parse: (raw) => {
      if (raw === '') return undefined;
      const lower = raw.toLowerCase();
      if ((allowed as readonly string[]).includes(lower)) return lower as Action;
      if (!allowReject && lower === 'reject') {
        return fail('a temporary DNS failure must never cause a permanent reject; expected one of: dunno, warn, defer');
      }
      if (!allowReject && lower === 'throttle') {
        return fail('a temporary DNS failure says nothing about the sender, so it is not throttled; expected one of: dunno, warn, defer');
      }
      return fail(`expected one of: ${allowed.join(', ')} (or empty for the check/mode preset)`);
    },
    show: (value) => value ?? '',
  };
}

const PERIODS: Record<string, number> = { second: 1000, minute: 60_000, hour: 3_600_000, day: 86_400_000 };

/**
 * `N/unit` (unit second, minute, hour or day): the throttle's rate. At most 1,000 events a
 * period, so an event's interval is at least a millisecond even per second (src/judge/throttle.ts).
 */
export const throttleRate: Kind<ThrottleRate> = {
  parse: (raw) => {
    const match = /^(\d{1,4})\s*\/\s*(second|minute|hour|day)s?$/i.exec(raw);
    const rate = Number(match?.[1]);
    if (!match || rate < 1 || rate > 1000) return fail('expected N/second, N/minute, N/hour or N/day with N from 1 to 1000, e.g. 20/hour');
    const unit = (match[2] as string).toLowerCase();
    return { rate, periodMs: PERIODS[unit] as number, text: `${rate}/${unit}` };
  },
  show: (value) => value.text,
};

export const throttleStore: Kind<ThrottleStoreTarget> = {
  parse: (raw) => {
    const target = parseThrottleStore(raw);
    return typeof target === 'string' ? fail(target) : target;
  },
  show: (value) => (value.kind === 'memory' ? 'memory' : value.display),
};

/** An absolute path of a file (its content is read by the daemon, never printed), or empty. */
export const optionalFilePath: Kind<string> = {
  parse: (raw) => {
    if (raw === '') return '';
    const problem = checkPasswordFilePath(raw);
    return problem === undefined ? raw : fail(problem);
  },
  show: same,
};

export function replyText(maxChars: number): Kind<string> {
  return {
    parse: (raw) => {
      if (raw.length > maxChars) return fail(`at most ${maxChars} characters`);
      // The hint goes into an SMTP reply: printable ASCII only (RFC 5321 §4.2).
      if (!/^[\x20-\x7e]*$/.test(raw)) return fail('printable ASCII only (it becomes part of the SMTP reply)');
      return raw;
    },
    show: same,
  };
}

export const localParts: Kind<readonly string[]> = {
  parse: (raw) => {
    const parts = splitList(raw).map((item) => item.toLowerCase());
    const bad = parts.find((item) => item.includes('@') || !/^[\x21-\x7e]+$/.test(item));
    return bad === undefined ? parts : fail(`"${printable(bad)}" must be a local part without @ (e.g. postmaster)`);
  },
  show: joined,
};

/** One host name, or empty. */
export const hostname: Kind<string> = {
  parse: (raw) => {
    if (raw === '') return '';
    const name = normaliseName(raw);
    return hostnameProblem(name) === undefined ? name : fail('expected a host name such as mx.example.org');
  },
  show: same,
};

/** pass_names: `mx.partner.org` (that name) or `.example.net` (any name under it), as Postfix writes domains. */
export const namesAndDomains: Kind<readonly string[]> = {
  parse: (raw) => {
    const names: string[] = [];
    for (const item of splitList(raw)) {
      const subdomains = item.startsWith('.');
      const name = normaliseName(subdomains ? item.slice(1) : item);
      if (hostnameProblem(name) !== undefined) return fail(`"${printable(item)}" is not a host name or .domain`);
      names.push(subdomains ? `.${name}` : name);
    }
    return names;
  },
  show: joined,
};
