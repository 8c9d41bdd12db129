/**
 * The key table: every key's name, default text, kind of value (kinds.ts) and the Config field it
 * sets, with what it is for. One source for the parser, validation, the `config` dump and the
 * man page and docs page (scripts/man.ts, scripts/docs.ts), so no key is described twice.
 */
import type { Network } from '../util/ip.js';
import { LIMITS } from './limits.js';
import { ACTIONS, CHECKS, GENERIC_LEVELS, MODES, type Action, type ActionTable, type Check, type FailureClass, type GenericLevel, type Mode, type ThrottleRate } from './presets.js';
import type { ThrottleStoreTarget } from './throttle-store-url.js';
import { actionOverride, count, dnsServers, duration, fileMode, hostname, listenAddress, localParts, namesAndDomains, networks, oneOf, optionalFilePath, optionalHostPort, replyText, throttleRate, throttleStore, yesNo, type HostPort, type Kind, type ListenAddress } from './kinds.js';

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
  readonly metricsListen: HostPort | undefined;
  readonly metricsAllow: readonly Network[];
  /** The `throttle` action's budget per network (issue 27): rate, burst, network prefix lengths. */
  readonly throttleRate: ThrottleRate;
  readonly throttleBurst: number;
  readonly throttlePrefixIpv4: number;
  readonly throttlePrefixIpv6: number;
  /** Where the budgets live: this host's memory, or Redis/Valkey shared by an MX fleet. */
  readonly throttleStore: ThrottleStoreTarget;
  readonly throttleStorePasswordFile: string;
  readonly throttleStoreTimeoutMs: number;
  /** Every key with its effective value as text, in table order (what `config` prints). */
  readonly effective: ReadonlyArray<readonly [string, string]>;
}

/** The Config fields one key sets each (source, overrides and effective come from several). */
type Field = Exclude<keyof Config, 'source' | 'overrides' | 'effective'>;

/** A key whose value is a Config field as it stands. */
interface FieldKey<F extends Field> {
  readonly default: string;
  readonly kind: Kind<Config[F]>;
  readonly field: F;
}

/** A `*_action` key: when set, it overrides the check/mode preset for its failure class. */
interface OverrideKey {
  readonly default: string;
  readonly kind: Kind<Action | undefined>;
  readonly override: FailureClass;
}

/** One row of the table, as a loop over all keys sees it (kinds.ts: Kind). */
export type KeyEntry = { readonly default: string; readonly kind: Kind<unknown>; readonly field: Field } | OverrideKey;

const set = <F extends Field>(field: F, defaultText: string, kind: Kind<Config[F]>): FieldKey<F> => ({ default: defaultText, kind, field });
const override = (failure: FailureClass, allowReject: boolean): OverrideKey => ({ default: '', kind: actionOverride(allowReject), override: failure });
const WEEK_MS = 7 * 86_400_000;

/** The key table, in the order `config` prints and the man page lists the keys. */
export const KEYS = {
  listen: set('listen', '127.0.0.1:10040', listenAddress),
  listen_mode: set('listenMode', '0660', fileMode),
  listen_allow: set('listenAllow', '127.0.0.0/8, ::1/128', networks),
  check: set('check', 'fcrdns', oneOf(CHECKS)),
  mode: set('mode', 'soft', oneOf(MODES)),
  no_ptr_action: override('no_ptr', true),
  no_forward_action: override('no_forward', true),
  mismatch_action: override('mismatch', true),
  // A temporary DNS failure never rejects (SPEC "Decision").
  temperror_action: override('temperror', false),
  skip_networks: set(
    'skipNetworks',
    '127.0.0.0/8, ::1/128, 10.0.0.0/8, 172.16.0.0/12, 192.168.0.0/16, 100.64.0.0/10, 169.254.0.0/16, fc00::/7, fe80::/10',
    networks,
  ),
  pass_recipients: set('passRecipients', 'postmaster, abuse', localParts),
  skip_authenticated: set('skipAuthenticated', 'yes', yesNo),
  dns_servers: set('dnsServers', '', dnsServers),
  dns_timeout: set('dnsTimeoutMs', '2s', duration(100, 60_000)),
  dns_tries: set('dnsTries', '2', count(1, 10)),
  max_ptr_names: set('maxPtrNames', '10', count(1, LIMITS.maxPtrNamesCeiling)),
  cache_size: set('cacheSize', '100000', count(1, LIMITS.maxCacheSizeCeiling)),
  cache_max_ttl: set('cacheMaxTtlMs', '1h', duration(1000, WEEK_MS)),
  ptr_ttl: set('ptrTtlMs', '15m', duration(0, WEEK_MS)),
  negative_ttl: set('negativeTtlMs', '5m', duration(0, WEEK_MS)),
  temperror_ttl: set('temperrorTtlMs', '30s', duration(0, 86_400_000)),
  log_level: set('logLevel', 'info', oneOf(LOG_LEVELS)),
  max_connections: set('maxConnections', '4096', count(1, LIMITS.maxConnectionsCeiling)),
  reply_hint: set('replyHint', '', replyText(LIMITS.maxReplyHintChars)),
  authres_header: set('authresHeader', 'no', yesNo),
  authserv_id: set('authservId', '', hostname),
  generic_action: set('genericAction', 'dunno', oneOf(ACTIONS)),
  generic_level: set('genericLevel', 'conservative', oneOf(GENERIC_LEVELS)),
  helo_mismatch_action: set('heloMismatchAction', 'dunno', oneOf(ACTIONS)),
  pass_names: set('passNames', '', namesAndDomains),
  metrics_listen: set('metricsListen', '', optionalHostPort),
  metrics_allow: set('metricsAllow', '127.0.0.0/8, ::1/128', networks),
  throttle_rate: set('throttleRate', '20/hour', throttleRate),
  throttle_burst: set('throttleBurst', '5', count(1, 1000)),
  throttle_prefix_ipv4: set('throttlePrefixIpv4', '24', count(8, 32)),
  throttle_prefix_ipv6: set('throttlePrefixIpv6', '64', count(16, 128)),
  throttle_store: set('throttleStore', 'memory', throttleStore),
  throttle_store_password_file: set('throttleStorePasswordFile', '', optionalFilePath),
  throttle_store_timeout: set('throttleStoreTimeoutMs', '50ms', duration(1, LIMITS.throttleStoreDeadlineCeilingMs)),
} as const;

export type ConfigKey = keyof typeof KEYS;
export const CONFIG_KEYS = Object.keys(KEYS) as ConfigKey[];

/** Each key's valid value, as its kind reads it. */
export type Values = { [K in ConfigKey]: (typeof KEYS)[K]['kind'] extends Kind<infer T> ? T : never };

// Every Config field has its key: a field no row sets would be missing from every Config built
// by the loop in validate.ts, and this line stops compiling instead.
type SetFields = Extract<(typeof KEYS)[ConfigKey], { field: Field }>['field'];
export const everyFieldHasAKey: [Exclude<Field, SetFields>] extends [never] ? true : never = true;

/** The built-in default text of every key. */
export function defaultValues(): Record<ConfigKey, string> {
  return Object.fromEntries(CONFIG_KEYS.map((key) => [key, KEYS[key].default])) as Record<ConfigKey, string>;
}

/**
 * What each key is for, and the values it takes: the source of fcrdns-policyd.conf(5)
 * (scripts/man.ts). A key without its entry does not compile; its row in KEYS gives the default.
 */
export const KEY_DOCS: Record<ConfigKey, { readonly values: string; readonly meaning: string; readonly defaultText?: string }> = {
  listen: { values: 'host:port, [ipv6]:port, or unix:/path', meaning: 'Where the policy service listens. For Debian\'s chrooted smtpd, a unix socket must live inside the Postfix queue directory, e.g. unix:/var/spool/postfix/private/fcrdns-policyd.' },
  listen_mode: { values: 'an octal mode', meaning: 'Permissions of a unix socket (Postfix\'s smtpd runs as user postfix).' },
  listen_allow: { values: 'a list of networks (CIDR or addresses)', meaning: 'TCP peers allowed to query; any other peer is disconnected at once and logged.' },
  check: { values: 'fcrdns or reverse', meaning: 'fcrdns: a PTR name must resolve back to the client IP (like reject_unknown_client_hostname). reverse: a PTR name must exist (like reject_unknown_reverse_client_hostname).' },
  mode: { values: 'monitor, soft or strict', meaning: 'The preset of the four per-class actions: monitor answers WARN for every failure, soft defers (450 4.7.25), strict rejects permanent failures (550 5.7.25). Temporary DNS failures are never rejected.' },
  no_ptr_action: { values: 'dunno, warn, throttle, defer or reject', meaning: 'Action when the client IP has no PTR record (or only unusable names); overrides the preset.', defaultText: 'from check and mode' },
  no_forward_action: { values: 'dunno, warn, throttle, defer or reject', meaning: 'Action when PTR names exist but none has an address record of the client\'s family; overrides the preset.', defaultText: 'from check and mode' },
  mismatch_action: { values: 'dunno, warn, throttle, defer or reject', meaning: 'Action when PTR names resolve, but not to the client IP; overrides the preset.', defaultText: 'from check and mode' },
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
  generic_action: { values: 'dunno, warn, throttle, defer or reject', meaning: 'Action for a client whose every forward-confirmed PTR name looks generic (a dynamic or pool address).' },
  generic_level: { values: 'conservative or aggressive', meaning: 'How eagerly names are judged generic: conservative is meant to be safe to reject on, aggressive for scoring.' },
  helo_mismatch_action: { values: 'dunno, warn, throttle, defer or reject', meaning: 'Action when the HELO name is neither a confirmed PTR name of the client, nor a name resolving to it, nor its address literal. With dunno the HELO name is never looked up.' },
  pass_names: { values: 'a list of names: mx.partner.org (that name) or .example.net (names below it)', meaning: 'Allowlist of forward-confirmed names: a client confirmed as one of them is always let through.', defaultText: 'empty' },
  metrics_listen: { values: 'host:port, or empty', meaning: `Where a Prometheus endpoint (/metrics, /healthz) listens, e.g. 127.0.0.1:9425. At most ${LIMITS.maxMetricsConnections} connections are open to it (at the cap the longest-open idle one is closed), and each closes after ${LIMITS.metricsIdleTimeoutMs / 1000} s without traffic. /healthz answers 503 when the policy listener does not answer a request of the daemon's own.`, defaultText: 'empty (off)' },
  metrics_allow: { values: 'a list of networks (CIDR or addresses)', meaning: 'Peers allowed to connect to metrics_listen; any other peer is disconnected at once (and counted in the warnings).' },
  throttle_rate: { values: 'N/second, N/minute, N/hour or N/day (N from 1 to 1000)', meaning: 'Messages a network may send per period while its class is throttled (an action of throttle): past the budget it is answered 450 4.7.25 with a rate-limit text. GCRA: one timestamp per network, no window edges.' },
  throttle_burst: { values: 'an integer from 1 to 1000', meaning: 'Messages a network may send at once before throttle_rate spaces them.' },
  throttle_prefix_ipv4: { values: 'an integer from 8 to 32', meaning: 'IPv4 clients share a budget per network of this prefix length.' },
  throttle_prefix_ipv6: { values: 'an integer from 16 to 128', meaning: 'IPv6 clients share a budget per network of this prefix length.' },
  throttle_store: { values: 'memory, redis://host[:port][/db], rediss://host[:port][/db], or the absolute path of a Redis/Valkey unix socket', meaning: 'Where the throttle budgets live: this host\'s memory, or a Redis or Valkey server shared by every MX host (one atomic script per step). A slow or absent server never delays a reply past throttle_store_timeout: this host\'s memory answers instead, and one log line says so. rediss:// checks the server\'s certificate against node\'s trust store (NODE_EXTRA_CA_CERTS adds a site CA).' },
  throttle_store_password_file: { values: 'an absolute path, or empty', meaning: 'A file holding the Redis/Valkey password (its first line); never in the configuration, the dump or the log.', defaultText: 'empty' },
  throttle_store_timeout: { values: `a duration (1ms to ${LIMITS.throttleStoreDeadlineCeilingMs}ms)`, meaning: 'Longest wait for the shared store per message; past it the local memory decides (fail open).' },
};
