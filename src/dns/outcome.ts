/**
 * What a DNS query ends as — an answer, "not found" or a temporary failure — and the single
 * place where DNS error codes become one or the other. Also the count of queries in flight,
 * kept for every way a query is sent (src/dns/resolver.ts, src/dns/sent-queries.ts).
 */
import type { NameProblem } from '../util/hostname.js';

/** c-ares' own callback, as node:dns' Resolver calls it: an error, or the records. */
export type DnsCallback<T> = (error: NodeJS.ErrnoException | null, records: T) => void;

/** node:dns' callback Resolver methods that the lookups use. */
export interface DnsCallbacks {
  resolvePtr(name: string, done: DnsCallback<string[]>): void;
  resolve4(name: string, options: { ttl: true }, done: DnsCallback<Array<{ address: string; ttl: number }>>): void;
  resolve6(name: string, options: { ttl: true }, done: DnsCallback<Array<{ address: string; ttl: number }>>): void;
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
export const TIMED_OUT = { kind: 'temporary', code: 'ETIMEOUT' } as const;

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

/** Count a query sent; queryEnded() counts it out when c-ares is done with it. */
export function queryStarted(): void {
  inFlight++;
}

export function queryEnded(): void {
  inFlight--;
}

/** Queries in flight now: what waiting requests cost besides themselves (LIMITS.maxQueriesInFlight). */
export function queriesInFlight(): number {
  return inFlight;
}

/** Why a PTR record was not examined: not a host name, past max_ptr_names' ceiling, or a repeat. */
export type IgnoredReason = NameProblem | 'over max_ptr_names' | 'duplicate';

/** Told about every query sent: its type, how it ended, and how long it took. */
export type QueryObserver = (type: 'ptr' | 'a' | 'aaaa', outcome: DnsOutcome<unknown>['kind'], seconds: number) => void;
