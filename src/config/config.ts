/**
 * The configuration file: Postfix main.cf syntax (postconf(5)), every key's default in one
 * table, validation that names file, line, key and what is allowed, and the effective
 * settings the daemon runs on. Pure: the caller reads the file.
 */
import ipaddr from 'ipaddr.js';
import { parseNetwork, type Network } from '../util/ip.js';
import { LIMITS } from './limits.js';
import { hostnameProblem, normaliseName } from '../util/hostname.js';
import { ACTIONS, CHECKS, GENERIC_LEVELS, MODES, type Action, type ActionTable, type Check, type GenericLevel, type Mode, effectiveActions } from './presets.js';

export type ListenAddress =
  | { kind: 'tcp'; host: string; port: number }
  | { kind: 'unix'; path: string };

export const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];

export const DEFAULT_CONFIG_PATH = '/etc/fcrdns-policyd/fcrdns-policyd.conf';

export interface Config {
  /** Where the settings came from, for logs. */
  readonly source: string;
  readonly listen: ListenAddress;
  readonly listenMode: number;
  readonly listenAllow: readonly Network[];
  readonly check: Check;
  readonly mode: Mode;
  readonly overrides: Partial<ActionTable>;
  readonly skipNetworks: readonly Network[];
  readonly passRecipients: readonly string[];
  readonly skipAuthenticated: boolean;
  readonly dnsServers: readonly string[];
  readonly dnsTimeoutMs: number;
  readonly dnsTries: number;
  readonly maxPtrNames: number;
  readonly cacheSize: number;
  readonly cacheMaxTtlMs: number;
  readonly ptrTtlMs: number;
  readonly negativeTtlMs: number;
  readonly temperrorTtlMs: number;
  readonly logLevel: LogLevel;
  readonly maxConnections: number;
  readonly replyHint: string;
  readonly authresHeader: boolean;
  readonly authservId: string;
  readonly genericAction: Action;
  readonly genericLevel: GenericLevel;
  readonly heloMismatchAction: Action;
  /** Verified-name allowlist: `exact.name` or `.domain` (its subdomains). */
  readonly passNames: readonly string[];
  readonly metricsListen: { host: string; port: number } | undefined;
  readonly metricsAllow: readonly Network[];
  /** Every key with its effective value as text, in table order (what `config` prints). */
  readonly effective: ReadonlyArray<readonly [string, string]>;
}

type Failure = { error: string };
type Parsed<T> = T | Failure;
const fail = (error: string): Failure => ({ error });
const isFailure = (value: unknown): value is Failure =>
  typeof value === 'object' && value !== null && 'error' in value && Object.keys(value).length === 1;

/** Postfix time units (postconf(5) "time unit"); a bare number is seconds. `ms` is an extension. */
const TIME_UNITS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000, w: 604_800_000 };

function duration(min: number, max: number) {
  return (raw: string): Parsed<number> => {
    const match = /^(\d{1,10})(ms|s|m|h|d|w)?$/.exec(raw);
    if (!match) return fail('expected a duration such as 30s, 5m, 1h or 2d (a bare number is seconds)');
    const ms = Number(match[1]) * (TIME_UNITS[match[2] ?? 's'] ?? 1000);
    if (ms < min || ms > max) return fail(`must be between ${formatDuration(min)} and ${formatDuration(max)}`);
    return ms;
  };
}

/** The shortest exact Postfix spelling of a duration. */
export function formatDuration(ms: number): string {
  if (ms === 0) return '0s';
  for (const unit of ['w', 'd', 'h', 'm', 's'] as const) {
    const size = TIME_UNITS[unit] ?? 1;
    if (ms >= size && ms % size === 0) return `${ms / size}${unit}`;
  }
  return `${ms}ms`;
}

function integer(min: number, max: number) {
  return (raw: string): Parsed<number> => {
    if (!/^\d{1,10}$/.test(raw)) return fail(`expected a whole number from ${min} to ${max}`);
    const value = Number(raw);
    return value < min || value > max ? fail(`expected a whole number from ${min} to ${max}`) : value;
  };
}

function oneOf<T extends string>(allowed: readonly T[]) {
  return (raw: string): Parsed<T> => {
    const lower = raw.toLowerCase();
    return (allowed as readonly string[]).includes(lower) ? (lower as T) : fail(`expected one of: ${allowed.join(', ')}`);
  };
}

/** postconf(5) lists: separated by commas and/or whitespace. */
export function splitList(raw: string): string[] {
  return raw.split(/[\s,]+/).filter((item) => item !== '');
}

function networkList(raw: string): Parsed<Network[]> {
  const networks: Network[] = [];
  for (const item of splitList(raw)) {
    const network = parseNetwork(item);
    if (!network) return fail(`"${printable(item)}" is not an address or CIDR network (e.g. 192.0.2.0/24, 2001:db8::/32)`);
    const meant = networkAddress(network);
    // Postfix warns on "non-null host address bits" (cidr_match.c) and uses the network; here it
    // is an error: a file cut mid-line (192.0.2.128/2 for /25) would otherwise quietly cover a
    // quarter of IPv4.
    if (meant !== undefined) return fail(`"${printable(item)}" has host bits set: write the network ${meant}, or fix the prefix length`);
    networks.push(network);
  }
  return networks;
}

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

function yesNo(raw: string): Parsed<boolean> {
  const lower = raw.toLowerCase();
  if (lower === 'yes' || lower === 'true' || lower === 'on') return true;
  if (lower === 'no' || lower === 'false' || lower === 'off') return false;
  return fail('expected yes or no');
}

function parseHostPort(raw: string, defaultPort?: number, minPort = 1): Parsed<{ host: string; port: number }> {
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

function listenAddress(raw: string): Parsed<ListenAddress> {
  if (raw.startsWith('unix:')) {
    const path = raw.slice('unix:'.length);
    if (!path.startsWith('/')) return fail('unix: needs an absolute path, e.g. unix:/var/spool/postfix/private/fcrdns-policyd');
    return { kind: 'unix', path };
  }
  // Port 0 binds any free port (tests; the bound port is logged at start-up).
  const hostPort = parseHostPort(raw, undefined, 0);
  if (isFailure(hostPort)) return fail(`${hostPort.error}, or unix:/path`);
  return { kind: 'tcp', ...hostPort };
}

function dnsServers(raw: string): Parsed<string[]> {
  const servers: string[] = [];
  for (const item of splitList(raw)) {
    const hostPort = parseHostPort(item, 53);
    if (isFailure(hostPort)) return fail(`"${printable(item)}": ${hostPort.error}`);
    // c-ares talks to addresses, not names: a name here could not be resolved without DNS.
    if (parseNetwork(hostPort.host) === undefined) return fail(`"${printable(item)}" must be an IP address, not a name`);
    servers.push(hostPort.host.includes(':') ? `[${hostPort.host}]:${hostPort.port}` : `${hostPort.host}:${hostPort.port}`);
  }
  return servers;
}

function action(allowReject: boolean) {
  return (raw: string): Parsed<Action | undefined> => {
    if (raw === '') return undefined;
    const allowed = allowReject ? ACTIONS : ACTIONS.filter((item) => item !== 'reject');
    const lower = raw.toLowerCase();
    if ((allowed as readonly string[]).includes(lower)) return lower as Action;
    if (!allowReject && lower === 'reject') {
      return fail('a temporary DNS failure must never cause a permanent reject; expected one of: dunno, warn, defer');
    }
    return fail(`expected one of: ${allowed.join(', ')} (or empty for the check/mode preset)`);
  };
}

function replyHint(raw: string): Parsed<string> {
  if (raw.length > LIMITS.maxReplyHintChars) return fail(`at most ${LIMITS.maxReplyHintChars} characters`);
  // The hint goes into an SMTP reply: printable ASCII only (RFC 5321 §4.2).
  if (!/^[\x20-\x7e]*$/.test(raw)) return fail('printable ASCII only (it becomes part of the SMTP reply)');
  return raw;
}

function recipients(raw: string): Parsed<string[]> {
  const parts = splitList(raw).map((item) => item.toLowerCase());
  const bad = parts.find((item) => item.includes('@') || !/^[\x21-\x7e]+$/.test(item));
  return bad === undefined ? parts : fail(`"${printable(bad)}" must be a local part without @ (e.g. postmaster)`);
}

function hostname(raw: string): Parsed<string> {
  if (raw === '') return '';
  const name = normaliseName(raw);
  return hostnameProblem(name) === undefined ? name : fail('expected a host name such as mx.example.org');
}

/** pass_names: `mx.partner.org` (that name) or `.example.net` (any name under it), as Postfix writes domains. */
function nameList(raw: string): Parsed<string[]> {
  const names: string[] = [];
  for (const item of splitList(raw)) {
    const subdomains = item.startsWith('.');
    const name = normaliseName(subdomains ? item.slice(1) : item);
    if (hostnameProblem(name) !== undefined) return fail(`"${printable(item)}" is not a host name or .domain`);
    names.push(subdomains ? `.${name}` : name);
  }
  return names;
}

function optionalHostPort(raw: string): Parsed<{ host: string; port: number } | undefined> {
  if (raw === '') return undefined;
  // Port 0 binds any free port (tests; the bound address is logged at start-up).
  return parseHostPort(raw, undefined, 0);
}

function plainAction(raw: string): Parsed<Action> {
  const lower = raw.toLowerCase();
  return (ACTIONS as readonly string[]).includes(lower) ? (lower as Action) : fail(`expected one of: ${ACTIONS.join(', ')}`);
}

/** The key table: name, default text, parser, and what the key is for (shown in errors and docs). */
const KEYS = {
  listen: { default: '127.0.0.1:10040', parse: listenAddress },
  listen_mode: {
    default: '0660',
    parse: (raw: string): Parsed<number> => (/^0?[0-7]{3}$/.test(raw) ? parseInt(raw, 8) : fail('expected an octal mode such as 0660')),
  },
  listen_allow: { default: '127.0.0.0/8, ::1/128', parse: networkList },
  check: { default: 'fcrdns', parse: oneOf(CHECKS) },
  mode: { default: 'soft', parse: oneOf(MODES) },
  no_ptr_action: { default: '', parse: action(true) },
  no_forward_action: { default: '', parse: action(true) },
  mismatch_action: { default: '', parse: action(true) },
  temperror_action: { default: '', parse: action(false) },
  skip_networks: {
    default:
      '127.0.0.0/8, ::1/128, 10.0.0.0/8, 172.16.0.0/12, 192.168.0.0/16, 100.64.0.0/10, 169.254.0.0/16, fc00::/7, fe80::/10',
    parse: networkList,
  },
  pass_recipients: { default: 'postmaster, abuse', parse: recipients },
  skip_authenticated: { default: 'yes', parse: yesNo },
  dns_servers: { default: '', parse: dnsServers },
  dns_timeout: { default: '2s', parse: duration(100, 60_000) },
  dns_tries: { default: '2', parse: integer(1, 10) },
  max_ptr_names: { default: '10', parse: integer(1, LIMITS.maxPtrNamesCeiling) },
  cache_size: { default: '100000', parse: integer(1, LIMITS.maxCacheSizeCeiling) },
  cache_max_ttl: { default: '1h', parse: duration(1000, 7 * 86_400_000) },
  ptr_ttl: { default: '15m', parse: duration(0, 7 * 86_400_000) },
  negative_ttl: { default: '5m', parse: duration(0, 7 * 86_400_000) },
  temperror_ttl: { default: '30s', parse: duration(0, 86_400_000) },
  log_level: { default: 'info', parse: oneOf(LOG_LEVELS) },
  max_connections: { default: '4096', parse: integer(1, LIMITS.maxConnectionsCeiling) },
  reply_hint: { default: '', parse: replyHint },
  authres_header: { default: 'no', parse: yesNo },
  authserv_id: { default: '', parse: hostname },
  generic_action: { default: 'dunno', parse: plainAction },
  generic_level: { default: 'conservative', parse: oneOf(GENERIC_LEVELS) },
  helo_mismatch_action: { default: 'dunno', parse: plainAction },
  pass_names: { default: '', parse: nameList },
  metrics_listen: { default: '', parse: optionalHostPort },
  metrics_allow: { default: '127.0.0.0/8, ::1/128', parse: networkList },
} as const;

export type ConfigKey = keyof typeof KEYS;

/**
 * What each key is for, and the values it takes: the source of fcrdns-policyd.conf(5)
 * (scripts/man.ts). A key without its entry does not compile; `default` above is the default.
 */
export const KEY_DOCS: Record<ConfigKey, { readonly values: string; readonly meaning: string; readonly defaultText?: string }> = {
  listen: { values: 'host:port, [ipv6]:port, or unix:/path', meaning: 'Where the policy service listens. For Debian\'s chrooted smtpd, a unix socket must live inside the Postfix queue directory, e.g. unix:/var/spool/postfix/private/fcrdns-policyd.' },
  listen_mode: { values: 'an octal mode', meaning: 'Permissions of a unix socket (Postfix\'s smtpd runs as user postfix).' },
  listen_allow: { values: 'a list of networks (CIDR or addresses)', meaning: 'TCP peers allowed to query; any other peer is disconnected at once and logged.' },
  check: { values: 'fcrdns or reverse', meaning: 'fcrdns: a PTR name must resolve back to the client IP (like reject_unknown_client_hostname). reverse: a PTR name must exist (like reject_unknown_reverse_client_hostname).' },
  mode: { values: 'monitor, soft or strict', meaning: 'The preset of the four per-class actions: monitor answers WARN for every failure, soft defers (450 4.7.25), strict rejects permanent failures (550 5.7.25). Temporary DNS failures are never rejected.' },
  no_ptr_action: { values: 'dunno, warn, defer or reject', meaning: 'Action when the client IP has no PTR record (or only unusable names); overrides the preset.', defaultText: 'from check and mode' },
  no_forward_action: { values: 'dunno, warn, defer or reject', meaning: 'Action when PTR names exist but none has an address record of the client\'s family; overrides the preset.', defaultText: 'from check and mode' },
  mismatch_action: { values: 'dunno, warn, defer or reject', meaning: 'Action when PTR names resolve, but not to the client IP; overrides the preset.', defaultText: 'from check and mode' },
  temperror_action: { values: 'dunno, warn or defer (never reject)', meaning: 'Action when a lookup that could change the outcome failed temporarily (SERVFAIL, REFUSED, timeout); overrides the preset.', defaultText: 'from check and mode' },
  skip_networks: { values: 'a list of networks (CIDR or addresses)', meaning: 'Clients never checked. A client behind NAT cannot be judged; when most clients fall here the daemon warns that Postfix may sit behind NAT or a proxy. ::ffff:a.b.c.d/N (N >= 96) is the IPv4 network a.b.c.d/(N-96).' },
  pass_recipients: { values: 'a list of local parts', meaning: 'Recipients always let through, so a blocked sender can still reach the administrator (RFC 5321 section 4.5.1).' },
  skip_authenticated: { values: 'yes or no', meaning: 'A request with a non-empty sasl_username is never checked.' },
  dns_servers: { values: 'a list of ip, ip:port or [ipv6]:port', meaning: 'Resolvers to ask; empty: the system resolver configuration (/etc/resolv.conf).', defaultText: 'the system resolvers' },
  dns_timeout: { values: 'a duration (100ms to 60s)', meaning: 'Timeout of one query attempt.' },
  dns_tries: { values: 'an integer from 1 to 10', meaning: 'Attempts per query. A request\'s lookups never take longer than dns_timeout times dns_tries (plus 250 ms) in all.' },
  max_ptr_names: { values: 'an integer from 1 to 50', meaning: 'PTR names examined per client IP; more are ignored and logged.' },
  cache_size: { values: 'an integer', meaning: 'DNS lookups kept in the cache (LRU), about 400 bytes of heap each. Past 100000, node\'s heap cap (--max-old-space-size, 96 MB in the launcher) must grow by about 40 MB per further 100000 entries; the daemon refuses a cache_size its heap cannot hold and says which value to set.' },
  cache_max_ttl: { values: 'a duration (1s to 1w)', meaning: 'Upper bound on any cached answer; A and AAAA record TTLs are honoured below it.' },
  ptr_ttl: { values: 'a duration (0 to 1w)', meaning: 'How long PTR answers are kept (c-ares does not expose PTR TTLs).' },
  negative_ttl: { values: 'a duration (0 to 1w)', meaning: 'How long NXDOMAIN and no-data answers are kept.' },
  temperror_ttl: { values: 'a duration (0 to 1d)', meaning: 'How long a temporary failure is kept, so a dead resolver is not hammered.' },
  log_level: { values: 'fatal, error, warn, info, debug, trace or silent', meaning: 'The log level. At info every decision writes one JSON line.' },
  max_connections: { values: 'an integer', meaning: 'Open connections at most; at the cap the longest-idle one is closed to make room (Postfix reconnects when it needs to).' },
  reply_hint: { values: 'printable ASCII, at most 200 characters', meaning: 'Text appended to reject and defer replies, e.g. a URL explaining the policy.', defaultText: 'empty' },
  authres_header: { values: 'yes or no', meaning: 'Prepend an RFC 8601 Authentication-Results header (method iprev) once per accepted message.' },
  authserv_id: { values: 'a host name', meaning: 'This server\'s name in that header; required with authres_header = yes.', defaultText: 'empty' },
  generic_action: { values: 'dunno, warn, defer or reject', meaning: 'Action for a client whose every forward-confirmed PTR name looks generic (a dynamic or pool address).' },
  generic_level: { values: 'conservative or aggressive', meaning: 'How eagerly names are judged generic: conservative is meant to be safe to reject on, aggressive for scoring.' },
  helo_mismatch_action: { values: 'dunno, warn, defer or reject', meaning: 'Action when the HELO name is neither a confirmed PTR name of the client, nor a name resolving to it, nor its address literal. With dunno the HELO name is never looked up.' },
  pass_names: { values: 'a list of names: mx.partner.org (that name) or .example.net (names below it)', meaning: 'Allowlist of forward-confirmed names: a client confirmed as one of them is always let through.', defaultText: 'empty' },
  metrics_listen: { values: 'host:port, or empty', meaning: `Where a Prometheus endpoint (/metrics, /healthz) listens, e.g. 127.0.0.1:9425. At most ${LIMITS.maxMetricsConnections} connections are open to it (at the cap the longest-open idle one is closed), and each closes after ${LIMITS.metricsIdleTimeoutMs / 1000} s without traffic. /healthz answers 503 when the policy listener does not answer a request of the daemon's own.`, defaultText: 'empty (off)' },
  metrics_allow: { values: 'a list of networks (CIDR or addresses)', meaning: 'Peers allowed to connect to metrics_listen; any other peer is disconnected at once (and counted in the warnings).' },
};
export const CONFIG_KEYS = Object.keys(KEYS) as ConfigKey[];
type Values = { [K in ConfigKey]: Exclude<ReturnType<(typeof KEYS)[K]['parse']>, Failure> };

/** The built-in default text of every key. */
export function defaultValues(): Record<ConfigKey, string> {
  return Object.fromEntries(CONFIG_KEYS.map((key) => [key, KEYS[key].default])) as Record<ConfigKey, string>;
}

export class ConfigError extends Error {
  constructor(readonly problems: readonly string[]) {
    super(problems.join('\n'));
  }
}

/** Escape what a config file or peer wrote before it goes into a message. */
function printable(text: string): string {
  return text.replace(/[^\x20-\x7e]/g, (ch) => `\\x${ch.charCodeAt(0).toString(16).padStart(2, '0')}`).slice(0, 100);
}

/** Levenshtein distance, for "did you mean" on a mistyped key. */
function editDistance(a: string, b: string): number {
  let previous = Array.from({ length: b.length + 1 }, (_, i) => i);
  for (let i = 1; i <= a.length; i++) {
    const current = [i];
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      current.push(Math.min((previous[j] ?? 0) + 1, (current[j - 1] ?? 0) + 1, (previous[j - 1] ?? 0) + cost));
    }
    previous = current;
  }
  return previous[b.length] ?? 0;
}

function nearestKey(name: string): string | undefined {
  let best: string | undefined;
  let bestDistance = Number.POSITIVE_INFINITY;
  for (const key of CONFIG_KEYS) {
    const distance = editDistance(name, key);
    if (distance < bestDistance) {
      best = key;
      bestDistance = distance;
    }
  }
  return bestDistance <= Math.max(2, Math.floor(name.length / 3)) ? best : undefined;
}

/**
 * Parse a config file's text. main.cf rules (postconf(5)): `name = value`; lines whose first
 * non-blank character is `#` and blank lines are ignored; a line starting with whitespace
 * continues the previous value; a `#` inside a value is part of it. Unlike Postfix, a key
 * given twice is an error: nothing is silently ignored (SPEC "Config file").
 * Throws ConfigError listing every problem as `file:line: key: message`.
 */
export function parseConfig(text: string, source: string): Config {
  const problems: string[] = [];
  const raw = new Map<ConfigKey, { value: string; line: number }>();
  let current: { key: ConfigKey | undefined; value: string; line: number } | undefined;

  const finish = (): void => {
    if (!current || current.key === undefined) return;
    const previous = raw.get(current.key);
    if (previous) {
      problems.push(`${source}:${current.line}: ${current.key}: set again (first set on line ${previous.line}); remove one`);
    } else {
      raw.set(current.key, { value: current.value.trim(), line: current.line });
    }
  };

  // A UTF-8 byte-order mark, as some Windows editors write one, is not part of the first line
  // (JavaScript's \s matches U+FEFF: it would read as a continuation line).
  const lines = (text.startsWith('\uFEFF') ? text.slice(1) : text).split('\n');
  lines.forEach((rawLine, index) => {
    const line = rawLine.endsWith('\r') ? rawLine.slice(0, -1) : rawLine;
    const lineNumber = index + 1;
    if (/^\s*(#|$)/.test(line)) return;
    if (/^\s/.test(line)) {
      if (!current) problems.push(`${source}:${lineNumber}: continuation line with no setting before it`);
      else current.value += ` ${line.trim()}`;
      return;
    }
    finish();
    const match = /^([A-Za-z0-9_]+)\s*=(.*)$/.exec(line);
    if (!match) {
      problems.push(`${source}:${lineNumber}: expected "name = value", got "${printable(line)}"`);
      current = { key: undefined, value: '', line: lineNumber };
      return;
    }
    const name = match[1] ?? '';
    if (!(name in KEYS)) {
      const suggestion = nearestKey(name);
      problems.push(
        `${source}:${lineNumber}: ${name}: unknown key${suggestion ? ` (did you mean ${suggestion}?)` : ''}; known keys: ${CONFIG_KEYS.join(', ')}`,
      );
      current = { key: undefined, value: '', line: lineNumber };
      return;
    }
    current = { key: name as ConfigKey, value: match[2] ?? '', line: lineNumber };
  });
  finish();

  const values: Partial<Record<ConfigKey, unknown>> = {};
  for (const key of CONFIG_KEYS) {
    const given = raw.get(key);
    const text = given?.value ?? KEYS[key].default;
    const parsed: unknown = KEYS[key].parse(text);
    if (isFailure(parsed)) {
      const where = given ? `${source}:${given.line}` : `${source} (default)`;
      problems.push(`${where}: ${key}: invalid value "${printable(text)}": ${parsed.error}`);
      continue;
    }
    values[key] = parsed;
  }
  if (values.authres_header === true && values.authserv_id === '') {
    const where = raw.get('authres_header');
    problems.push(
      `${source}:${where?.line ?? 0}: authres_header: needs authserv_id (RFC 8601 §2.5: the name of this server, e.g. authserv_id = mx.example.org)`,
    );
  }
  if (problems.length > 0) throw new ConfigError(problems);
  return buildConfig(values as Values, source);
}

/** The built-in defaults, as `npm start` on a fresh clone runs. */
export function defaultConfig(): Config {
  return parseConfig('', '(built-in defaults)');
}

function buildConfig(values: Values, source: string): Config {
  const overrides: Partial<ActionTable> = {};
  if (values.no_ptr_action) overrides.no_ptr = values.no_ptr_action;
  if (values.no_forward_action) overrides.no_forward = values.no_forward_action;
  if (values.mismatch_action) overrides.mismatch = values.mismatch_action;
  if (values.temperror_action) overrides.temperror = values.temperror_action;
  const actions = effectiveActions({ check: values.check, mode: values.mode, overrides });
  const config: Omit<Config, 'effective'> = {
    source,
    listen: values.listen,
    listenMode: values.listen_mode,
    listenAllow: values.listen_allow,
    check: values.check,
    mode: values.mode,
    overrides,
    skipNetworks: values.skip_networks,
    passRecipients: values.pass_recipients,
    skipAuthenticated: values.skip_authenticated,
    dnsServers: values.dns_servers,
    dnsTimeoutMs: values.dns_timeout,
    dnsTries: values.dns_tries,
    maxPtrNames: values.max_ptr_names,
    cacheSize: values.cache_size,
    cacheMaxTtlMs: values.cache_max_ttl,
    ptrTtlMs: values.ptr_ttl,
    negativeTtlMs: values.negative_ttl,
    temperrorTtlMs: values.temperror_ttl,
    logLevel: values.log_level,
    maxConnections: values.max_connections,
    replyHint: values.reply_hint,
    authresHeader: values.authres_header,
    authservId: values.authserv_id,
    genericAction: values.generic_action,
    genericLevel: values.generic_level,
    heloMismatchAction: values.helo_mismatch_action,
    passNames: values.pass_names,
    metricsListen: values.metrics_listen,
    metricsAllow: values.metrics_allow,
  };
  const listenText =
    config.listen.kind === 'unix'
      ? `unix:${config.listen.path}`
      : config.listen.host.includes(':')
        ? `[${config.listen.host}]:${config.listen.port}`
        : `${config.listen.host}:${config.listen.port}`;
  const list = (items: readonly { text: string }[] | readonly string[]): string =>
    items.map((item) => (typeof item === 'string' ? item : item.text)).join(', ');
  const effective: Array<readonly [string, string]> = [
    ['listen', listenText],
    ['listen_mode', `0${config.listenMode.toString(8)}`],
    ['listen_allow', list(config.listenAllow)],
    ['check', config.check],
    ['mode', config.mode],
    ['no_ptr_action', actions.no_ptr],
    ['no_forward_action', actions.no_forward],
    ['mismatch_action', actions.mismatch],
    ['temperror_action', actions.temperror],
    ['skip_networks', list(config.skipNetworks)],
    ['pass_recipients', list(config.passRecipients)],
    ['skip_authenticated', config.skipAuthenticated ? 'yes' : 'no'],
    ['dns_servers', list(config.dnsServers)],
    ['dns_timeout', formatDuration(config.dnsTimeoutMs)],
    ['dns_tries', String(config.dnsTries)],
    ['max_ptr_names', String(config.maxPtrNames)],
    ['cache_size', String(config.cacheSize)],
    ['cache_max_ttl', formatDuration(config.cacheMaxTtlMs)],
    ['ptr_ttl', formatDuration(config.ptrTtlMs)],
    ['negative_ttl', formatDuration(config.negativeTtlMs)],
    ['temperror_ttl', formatDuration(config.temperrorTtlMs)],
    ['log_level', config.logLevel],
    ['max_connections', String(config.maxConnections)],
    ['reply_hint', config.replyHint],
    ['authres_header', config.authresHeader ? 'yes' : 'no'],
    ['authserv_id', config.authservId],
    ['generic_action', config.genericAction],
    ['generic_level', config.genericLevel],
    ['helo_mismatch_action', config.heloMismatchAction],
    ['pass_names', list(config.passNames)],
    ['metrics_listen', config.metricsListen ? (config.metricsListen.host.includes(':') ? `[${config.metricsListen.host}]:${config.metricsListen.port}` : `${config.metricsListen.host}:${config.metricsListen.port}`) : ''],
    ['metrics_allow', list(config.metricsAllow)],
  ];
  return { ...config, effective };
}

/** `postconf`-style text: one `key = value` line per key. */
export function formatEffective(config: Config): string {
  return config.effective.map(([key, value]) => (value === '' ? `${key} =` : `${key} = ${value}`)).join('\n') + '\n';
}
