/**
 * The narrow DNS interface the lookups need, the real c-ares implementation of it, and the
 * single place where DNS error codes become "not found" or "temporary". Nothing here throws:
 * every query ends as a DnsOutcome value.
 */
import { performance } from 'node:perf_hooks';
import { hostnameProblem, normaliseName } from '../util/hostname.js';
import { LIMITS } from '../config/limits.js';
import { paced } from './pacing.js';
import { classifyDnsError, queryEnded, queryStarted, TIMED_OUT } from './outcome.js';
import type { AddressOutcome, DnsCallback, DnsCallbacks, DnsOutcome, IgnoredReason, PtrOutcome, QueryObserver } from './outcome.js';
import { SentQueries, type QuerySender } from './sent-queries.js';
import { rotatingChannels, watchedChannelMemory } from './channels.js';

export { classifyDnsError, queriesInFlight } from './outcome.js';
export type { AddressOutcome, DnsCallback, DnsCallbacks, DnsOutcome, IgnoredReason, PtrOutcome, QueryObserver } from './outcome.js';
export type { QueryListener, QuerySender } from './sent-queries.js';

/** What a resolver must offer: the shape of node:dns/promises' Resolver, so tests can pass a zone table. */
export interface DnsResolver {
  resolvePtr(name: string): Promise<string[]>;
  resolve4(name: string, options: { ttl: true }): Promise<Array<{ address: string; ttl: number }>>;
  resolve6(name: string, options: { ttl: true }): Promise<Array<{ address: string; ttl: number }>>;
  /**
   * The same queries in node:dns' callback shape, where the resolver has it (the system
   * resolver): the cold path asks c-ares with one callback per query instead of a promise.
   */
  readonly callbacks?: DnsCallbacks;
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
 * Whether this node's c-ares keeps a query cache of its own, which the program cannot turn off.
 * c-ares 1.31+ caches answers (up to their TTL, at most an hour) unless told not to; upstream
 * Node's build, with its bundled c-ares, does not cache (measured: 1.34.6 in Node 20.20), but
 * Debian 13's nodejs links the system c-ares 1.34.5, which does, and Node offers no option.
 * Debian 12's system c-ares 1.18 has no such cache. So: a shared c-ares of 1.31 or later.
 */
export function caresCachesQueries(aresVersion = process.versions.ares, sharedCares: unknown = (process.config.variables as Record<string, unknown>).node_shared_cares): boolean {
  if (sharedCares !== true && sharedCares !== 'true') return false;
  const [major = 0, minor = 0] = (aresVersion ?? '').split('.').map(Number);
  return major > 1 || (major === 1 && minor >= 31);
}

/**
 * The real resolver: node:dns' c-ares Resolver, non-blocking (never dns.lookup, which
 * occupies a libuv threadpool thread per query).
 *
 * Where c-ares caches queries (caresCachesQueries), the channel is replaced every
 * LIMITS.resolverChannelQueries queries or LIMITS.resolverChannelMs, whichever comes first. That
 * cache holds every answer off the V8 heap: a hostile reverse zone's 64 KB answers took the
 * daemon to ~395 MB RSS on Debian 13 against ~130 MB upstream
 * (test/artefacts/distro-node-trixie.test.ts runs test/integration/hostile-zone.test.ts on that
 * build), and it would serve answers past ptr_ttl and negative_ttl. A channel that lives briefly
 * bounds both (src/dns/channels.ts, which also bounds what retired channels hold until V8 collects
 * them); the daemon's own cache (src/dns/cache.ts) is the only cache that decides. Elsewhere a
 * channel lives a minute (rotatingChannels): a new one costs a new UDP socket, ~4 µs of a new client's
 * CPU at 32 queries a channel (BENCHMARKS.md "Session 8").
 */
export function createSystemResolver(settings: DnsSettings, now: () => number = Date.now, renewChannels = caresCachesQueries()): DnsResolver {
  const callbacks: DnsCallbacks = rotatingChannels(settings, now, renewChannels ? watchedChannelMemory() : undefined);
  const promisify =
    <T>(call: (done: DnsCallback<T>) => void) =>
    () =>
      new Promise<T>((resolve, reject) => call((error, value) => (error ? reject(error) : resolve(value))));
  return {
    resolvePtr: (name) => promisify<string[]>((done) => callbacks.resolvePtr(name, done))(),
    resolve4: (name) => promisify<Array<{ address: string; ttl: number }>>((done) => callbacks.resolve4(name, { ttl: true }, done))(),
    resolve6: (name) => promisify<Array<{ address: string; ttl: number }>>((done) => callbacks.resolve6(name, { ttl: true }, done))(),
    callbacks,
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

/**
 * Of a PTR answer only what can be examined is kept (a hostile zone may answer thousands of
 * names): the usable names up to the max_ptr_names ceiling, a few unusable ones as examples,
 * and counts of the rest. An answer the daemon keeps costs at most ~15 KB whatever DNS sent.
 */
const ptrKept = (outcome: PtrOutcome): PtrOutcome => (outcome.kind === 'answer' ? keepPtrRecords(outcome.records) : outcome);

/** The records' addresses (the first LIMITS.maxAddressesKept), and the smallest TTL as the answer's own. */
function addressesKept(outcome: DnsOutcome<Array<{ address: string; ttl: number }>>): AddressOutcome {
  if (outcome.kind !== 'answer') return outcome;
  const ttl = outcome.records.reduce((min, record) => Math.min(min, record.ttl), Number.POSITIVE_INFINITY);
  const kept = outcome.records.length > LIMITS.maxAddressesKept ? outcome.records.slice(0, LIMITS.maxAddressesKept) : outcome.records;
  return {
    kind: 'answer',
    records: kept.map((record) => record.address),
    ...(Number.isFinite(ttl) ? { ttl } : {}),
    ...(kept.length < outcome.records.length ? { omitted: outcome.records.length - kept.length } : {}),
  };
}

/**
 * IprevDns straight on a resolver, no cache (the `check` command), and the cache's QuerySender:
 * the promise-shaped lookups are the callback ones (src/dns/sent-queries.ts) in a promise, so a
 * query ends one way whoever asks.
 */
export function directLookups(resolver: DnsResolver, deadlineMs: number, observe?: QueryObserver): IprevDns & QuerySender {
  const sent = new SentQueries(deadlineMs, observe);
  const calls = resolver.callbacks ?? callbacksOf(resolver);
  const lookups: QuerySender = {
    sendPtr: (name, listener) => sent.send('ptr', ptrKept, listener, (done: DnsCallback<string[]>) => calls.resolvePtr(name, done)),
    sendAddresses: (name, family, listener) =>
      family === 4
        ? sent.send('a', addressesKept, listener, (done: DnsCallback<Array<{ address: string; ttl: number }>>) => calls.resolve4(name, { ttl: true }, done))
        : sent.send('aaaa', addressesKept, listener, (done: DnsCallback<Array<{ address: string; ttl: number }>>) => calls.resolve6(name, { ttl: true }, done)),
  };
  return {
    ...lookups,
    lookupPtr: (name) => new Promise((answered) => lookups.sendPtr(name, { answered })),
    lookupAddresses: (name, family) => new Promise((answered) => lookups.sendAddresses(name, family, { answered })),
  };
}

/** A promise-shaped resolver (a test's zone table) asked through the callback shape. */
function callbacksOf(resolver: DnsResolver): DnsCallbacks {
  const settle = <T>(query: () => Promise<T>, done: DnsCallback<T>): void => {
    query().then(
      (records) => done(null, records),
      (error: unknown) => done((error ?? new Error('rejected')) as NodeJS.ErrnoException, undefined as T),
    );
  };
  return {
    resolvePtr: (name, done) => settle(() => resolver.resolvePtr(name), done),
    resolve4: (name, options, done) => settle(() => resolver.resolve4(name, options), done),
    resolve6: (name, options, done) => settle(() => resolver.resolve6(name, options), done),
  };
}

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
