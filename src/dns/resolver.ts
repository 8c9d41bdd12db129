/**
 * The narrow DNS interface the lookups need, the real c-ares implementation of it, and the
 * single place where DNS error codes become "not found" or "temporary". Nothing here throws:
 * every query ends as a DnsOutcome value.
 */
import { Resolver } from 'node:dns';
import { performance } from 'node:perf_hooks';
import { hostnameProblem, normaliseName, type NameProblem } from '../util/hostname.js';
import { LIMITS } from '../config/limits.js';
import { paced } from './pacing.js';

/** What a resolver must offer: the shape of node:dns/promises' Resolver, so tests can pass a zone table. */
export interface DnsResolver {
  resolvePtr(name: string): Promise<string[]>;
  resolve4(name: string, options: { ttl: true }): Promise<Array<{ address: string; ttl: number }>>;
  resolve6(name: string, options: { ttl: true }): Promise<Array<{ address: string; ttl: number }>>;
}

export type DnsOutcome<T> =
  | {
      kind: 'answer';
      records: T;
      /** seconds, where the resolver exposes it */
      ttl?: number;
      /** Records of the answer not kept (bounded memory per answer: keepPtrRecords, LIMITS.maxAddressesKept). */
      omitted?: number;
      /** PTR answers: why the records not kept were set aside, by reason. */
      dropped?: Readonly<Partial<Record<IgnoredReason, number>>>;
    }
  /** RFC 8020 NXDOMAIN, or a name that exists with no record of the type (NODATA). */
  | { kind: 'not_found'; code: string }
  /** RFC 8601 §2.7.3 temperror: SERVFAIL, REFUSED, timeout, resolver unreachable. */
  | { kind: 'temporary'; code: string };

export type AddressOutcome = DnsOutcome<string[]>;
export type PtrOutcome = DnsOutcome<string[]>;

/** A query that outlived its deadline (shared: outcomes are never modified). */
const TIMED_OUT = { kind: 'temporary', code: 'ETIMEOUT' } as const;

/** Codes c-ares (node:dns) uses for an answer that says the record does not exist. */
const NOT_FOUND_CODES = new Set([
  'ENOTFOUND', // NXDOMAIN
  'ENODATA', // NOERROR with no record of that type
  'ENONAME',
  'EBADNAME', // a name that cannot be asked: it will not exist later either
]);

/**
 * Classify a failed query. Only answers that positively say "no such record" are permanent;
 * everything else (SERVFAIL, REFUSED, timeouts, connection errors, malformed answers and
 * any code not known here) is temporary, so a DNS problem can never cause a 5xx reply.
 */
export function classifyDnsError(error: unknown): { kind: 'not_found' | 'temporary'; code: string } {
  const code =
    typeof error === 'object' && error !== null && typeof (error as { code?: unknown }).code === 'string'
      ? (error as { code: string }).code
      : 'EUNKNOWN';
  return { kind: NOT_FOUND_CODES.has(code) ? 'not_found' : 'temporary', code };
}

/** DNS queries sent and not yet ended, by any resolver of this process (admission reads it). */
let inFlight = 0;

/** Queries in flight now: what waiting requests cost besides themselves (LIMITS.maxQueriesInFlight). */
export function queriesInFlight(): number {
  return inFlight;
}

/**
 * Run a query, turning its rejection into an outcome and bounding its duration. `finish` shapes
 * the outcome as it settles (inside this one promise: a `then` per step would be one more
 * promise, held by every request waiting on the query).
 */
export function settleQuery<T>(query: () => Promise<T>, deadlineMs: number): Promise<DnsOutcome<T>>;
export function settleQuery<T, R>(query: () => Promise<T>, deadlineMs: number, finish: (outcome: DnsOutcome<T>) => R): Promise<R>;
export function settleQuery<T, R>(query: () => Promise<T>, deadlineMs: number, finish?: (outcome: DnsOutcome<T>) => R): Promise<R | DnsOutcome<T>> {
  return new Promise<R | DnsOutcome<T>>((resolve) => {
    let settled = false;
    // In flight until c-ares itself gives up on it, which may be after this request's deadline.
    inFlight++;
    let counted = true;
    const ended = (): void => {
      if (counted) inFlight--;
      counted = false;
    };
    // The first of the answer and the deadline decides; `finish` runs once.
    const settle = (outcome: DnsOutcome<T>): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      paced(() => resolve(finish ? finish(outcome) : outcome));
    };
    const timer = setTimeout(() => settle(TIMED_OUT), deadlineMs);
    let attempt: Promise<T>;
    try {
      attempt = query();
    } catch (error) {
      ended();
      settle(classifyDnsError(error));
      return;
    }
    attempt.then(
      (records) => {
        ended();
        settle({ kind: 'answer', records });
      },
      (error: unknown) => {
        ended();
        settle(classifyDnsError(error));
      },
    );
  });
}

/** A `host`, `host:port`, `[v6]` or `[v6]:port` DNS server as c-ares' setServers accepts it. */
export type DnsServer = string;

export interface DnsSettings {
  /** Empty: the system resolver configuration (/etc/resolv.conf). */
  servers: readonly DnsServer[];
  timeoutMs: number;
  tries: number;
}

/**
 * The real resolver: node:dns' c-ares Resolver, non-blocking (never dns.lookup, which
 * occupies a libuv threadpool thread per query).
 *
 * The c-ares channel is replaced every LIMITS.resolverChannelQueries queries or
 * LIMITS.resolverChannelMs, whichever comes first. c-ares 1.31+ keeps a query cache of its own
 * (answers held up to their TTL, at most an hour) unless the program turns it off; upstream
 * Node's build does not cache, but Debian 13's nodejs (system c-ares 1.34.5) does, and Node
 * offers no option to turn it off. That cache holds every answer off the V8 heap: a hostile
 * reverse zone's 64 KB answers took the daemon to ~395 MB RSS on Debian 13 against ~130 MB
 * upstream (test/artefacts/distro-node-trixie.test.ts runs test/integration/hostile-zone.test.ts on that build), and it would
 * serve answers past ptr_ttl and negative_ttl. A channel that lives briefly bounds both; the
 * daemon's own cache (src/dns/cache.ts) is the only cache that decides. Queries already sent finish
 * on their old channel, which node frees once it is unreferenced.
 */
export function createSystemResolver(settings: DnsSettings, now: () => number = Date.now): DnsResolver {
  const newChannel = (): InstanceType<typeof Resolver> => {
    const channel = new Resolver({ timeout: settings.timeoutMs, tries: settings.tries });
    if (settings.servers.length > 0) channel.setServers([...settings.servers]);
    return channel;
  };
  let channel = newChannel();
  let channelQueries = 0;
  let channelBorn = now();
  const current = (): InstanceType<typeof Resolver> => {
    if (++channelQueries > LIMITS.resolverChannelQueries || now() - channelBorn > LIMITS.resolverChannelMs) {
      channel = newChannel();
      channelQueries = 1;
      channelBorn = now();
    }
    return channel;
  };
  const promisify =
    <T>(call: (done: (error: NodeJS.ErrnoException | null, value: T) => void) => void) =>
    () =>
      new Promise<T>((resolve, reject) => call((error, value) => (error ? reject(error) : resolve(value))));
  return {
    resolvePtr: (name) => promisify<string[]>((done) => current().resolvePtr(name, done))(),
    resolve4: (name) =>
      promisify<Array<{ address: string; ttl: number }>>((done) => current().resolve4(name, { ttl: true }, done))(),
    resolve6: (name) =>
      promisify<Array<{ address: string; ttl: number }>>((done) => current().resolve6(name, { ttl: true }, done))(),
  };
}

/** The overall bound on one query: c-ares' own timers are not enough on their own. */
export function queryDeadlineMs(settings: Pick<DnsSettings, 'timeoutMs' | 'tries'>): number {
  return settings.timeoutMs * settings.tries + LIMITS.dnsDeadlineMarginMs;
}

/** The lookups iprev needs, each ending in an outcome. */
export interface IprevDns {
  lookupPtr(reverseName: string): Promise<PtrOutcome>;
  lookupAddresses(name: string, family: 4 | 6): Promise<AddressOutcome>;
}

/** Told about every query sent: its type, how it ended, and how long it took. */
export type QueryObserver = (type: 'ptr' | 'a' | 'aaaa', outcome: DnsOutcome<unknown>['kind'], seconds: number) => void;

/** IprevDns straight on a resolver, no cache (the `check` command and the cache's loader). */
export function directLookups(resolver: DnsResolver, deadlineMs: number, observe?: QueryObserver): IprevDns {
  /** A query's outcome, told to the observer and shaped as it settles. */
  const ask = <T, R>(type: 'ptr' | 'a' | 'aaaa', query: () => Promise<T>, shape: (outcome: DnsOutcome<T>) => R): Promise<R> => {
    if (!observe) return settleQuery(query, deadlineMs, shape);
    const started = performance.now();
    return settleQuery(query, deadlineMs, (outcome) => {
      observe(type, outcome.kind, (performance.now() - started) / 1000);
      return shape(outcome);
    });
  };
  /**
   * Of a PTR answer only what can be examined is kept (a hostile zone may answer thousands of
   * names): the usable names up to the max_ptr_names ceiling, a few unusable ones as examples,
   * and counts of the rest. An answer the daemon keeps costs at most ~15 KB whatever DNS sent.
   */
  const ptrKept = (outcome: PtrOutcome): PtrOutcome => (outcome.kind === 'answer' ? keepPtrRecords(outcome.records) : outcome);
  /** The records' addresses (the first LIMITS.maxAddressesKept), and the smallest TTL as the answer's own. */
  const addresses = (outcome: DnsOutcome<Array<{ address: string; ttl: number }>>): AddressOutcome => {
    if (outcome.kind !== 'answer') return outcome;
    const ttl = outcome.records.reduce((min, record) => Math.min(min, record.ttl), Number.POSITIVE_INFINITY);
    const kept = outcome.records.length > LIMITS.maxAddressesKept ? outcome.records.slice(0, LIMITS.maxAddressesKept) : outcome.records;
    return {
      kind: 'answer',
      records: kept.map((record) => record.address),
      ...(Number.isFinite(ttl) ? { ttl } : {}),
      ...(kept.length < outcome.records.length ? { omitted: outcome.records.length - kept.length } : {}),
    };
  };
  return {
    lookupPtr: (name) => ask('ptr', () => resolver.resolvePtr(name), ptrKept),
    lookupAddresses: (name, family) =>
      family === 4
        ? ask('a', () => resolver.resolve4(name, { ttl: true }), addresses)
        : ask('aaaa', () => resolver.resolve6(name, { ttl: true }), addresses),
  };
}

/**
 * Bound a whole request's lookups by one deadline: PTR and forward queries together never take
 * longer than `deadlineMs`, whatever c-ares' own retry timers do. Late answers still land in
 * the cache; this request just stops waiting for them and sees a temporary failure.
 */
export function withOverallDeadline(dns: IprevDns, deadlineMs: number): { dns: IprevDns; dispose: () => void } {
  let timer: NodeJS.Timeout | undefined;
  const expired = new Promise<{ kind: 'temporary'; code: string }>((resolve) => {
    timer = setTimeout(() => paced(() => resolve({ kind: 'temporary', code: 'ETIMEOUT' })), deadlineMs);
  });
  return {
    dns: {
      lookupPtr: (name) => Promise.race([dns.lookupPtr(name), expired]),
      lookupAddresses: (name, family) => Promise.race([dns.lookupAddresses(name, family), expired]),
    },
    dispose: () => clearTimeout(timer),
  };
}

/** Why a PTR record was not examined: not a host name, past max_ptr_names' ceiling, or a repeat. */
export type IgnoredReason = NameProblem | 'over max_ptr_names' | 'duplicate';

/**
 * The part of a PTR answer worth keeping (in the cache, for a waiting request): its distinct
 * usable names up to the max_ptr_names ceiling, in answer order, and the first few unusable
 * records as examples; the rest are counted by reason. Any max_ptr_names a reload may set reads
 * the same names from it. A hostile zone's 64 KB answer of thousands of (compressed, duplicate)
 * names so costs at most 50 names + 4 examples of at most 256 characters.
 */
export function keepPtrRecords(records: readonly string[]): PtrOutcome {
  const kept: string[] = [];
  const seen = new Set<string>();
  const dropped: Partial<Record<IgnoredReason, number>> = {};
  let usable = 0;
  let examples = 0;
  let omitted = 0;
  const drop = (reason: IgnoredReason): void => {
    dropped[reason] = (dropped[reason] ?? 0) + 1;
    omitted++;
  };
  for (const raw of records) {
    const name = normaliseName(raw);
    const problem = hostnameProblem(name);
    if (problem !== undefined || seen.has(name)) {
      if (examples < LIMITS.maxIgnoredExamples) {
        examples++;
        kept.push(problem !== undefined ? raw.slice(0, LIMITS.maxLogFieldChars) : name);
      } else drop(problem ?? 'duplicate');
    } else if (usable < LIMITS.maxPtrNamesCeiling) {
      usable++;
      seen.add(name);
      kept.push(name);
    } else drop('over max_ptr_names');
  }
  return omitted === 0 ? { kind: 'answer', records: kept } : { kind: 'answer', records: kept, omitted, dropped };
}
