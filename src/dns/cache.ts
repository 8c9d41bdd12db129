/**
 * A bounded, TTL-aware cache of DNS outcomes in front of IprevDns. Concurrent misses for one
 * key share one query, and every outcome carries its own TTL.
 *
 * lru-cache bounds the entries and bytes; the expiry is this module's own, on its injectable
 * clock: lru-cache 10 (the line whose engines include the Node 18 floor) reads
 * performance.now() itself, and only 11 (Node 20+) takes another clock.
 */
import { LRUCache } from 'lru-cache';
import { performance } from 'node:perf_hooks';
import type { AddressOutcome, IprevDns, PtrOutcome } from './resolver.js';
import type { KnownAnswers } from './iprev.js';
import { LIMITS } from '../config/limits.js';
import { detachedCopy } from '../util/text.js';

export interface CacheSettings {
  size: number;
  maxTtlMs: number;
  ptrTtlMs: number;
  negativeTtlMs: number;
  temperrorTtlMs: number;
}

export interface CacheStats {
  hits: number;
  misses: number;
  /** Requests that joined a query already in flight instead of sending their own. */
  inflightJoins: number;
}

type Outcome = PtrOutcome | AddressOutcome;

/** An outcome and when it stops being an answer, on the cache's clock. */
interface Entry {
  readonly outcome: Outcome;
  readonly expiresAt: number;
}

/** A clock in milliseconds; injectable so TTL tests advance time instead of sleeping. */
export interface Clock {
  now(): number;
}

/** A record with TTL 0 is kept 1 ms: answers the request that asked, and no other. */
const MIN_TTL_MS = 1;

/** Cache keys: the record type, a space, the name (load() and ttlFor() read them back). */
const ptrKey = (name: string): string => `ptr ${name}`;
const addressKey = (name: string, family: 4 | 6): string => `${family === 4 ? 'a' : 'aaaa'} ${name}`;

/** Fixed cost of an entry: the entry and outcome objects, lru-cache's slots, the key's string header. */
const ENTRY_OVERHEAD_BYTES = 184;

/** Roughly what an entry holds in the heap (one-byte strings: a character is a byte). */
function approximateBytes({ outcome }: Entry, key: string): number {
  let bytes = ENTRY_OVERHEAD_BYTES + key.length;
  if (outcome.kind === 'answer') for (const record of outcome.records) bytes += 24 + record.length;
  return bytes;
}

export class LookupCache {
  private readonly cache: LRUCache<string, Entry, undefined>;
  /**
   * Queries in flight, by key: a miss joins the one already asked. lru-cache's fetch() does the
   * same with an AbortController, listeners and a background-fetch record per miss, which were
   * a tenth of a cold request's cost; outcomes here are values that never reject or abort.
   */
  private readonly inflight = new Map<string, Promise<Outcome>>();
  private readonly clock: Clock;
  private clears = 0;

  /** `stats` may be shared with an earlier cache, so counters survive a reload. */
  constructor(
    private readonly upstream: IprevDns,
    private readonly settings: CacheSettings,
    clock?: Clock,
    readonly stats: CacheStats = { hits: 0, misses: 0, inflightJoins: 0 },
  ) {
    this.clock = clock ?? performance;
    this.cache = new LRUCache<string, Entry, undefined>({
      max: settings.size,
      // Bytes as well as entries: an entry is ~400 bytes on average (LIMITS.heapBytesPerCacheEntry,
      // what the heap check at start-up budgets), but a hostile zone's PTR answer of fifty
      // 253-character names is thirty times that. Such entries push others out sooner instead of
      // growing the heap past what the unit's --max-old-space-size allows.
      maxSize: settings.size * LIMITS.heapBytesPerCacheEntry,
      sizeCalculation: approximateBytes,
    });
  }

  /** The outcome kept for a key while it is fresh; an expired one is dropped. */
  private fresh(key: string): Outcome | undefined {
    const entry = this.cache.get(key);
    if (entry === undefined) return undefined;
    if (entry.expiresAt > this.clock.now()) return entry.outcome;
    this.cache.delete(key);
    return undefined;
  }

  get size(): number {
    return this.cache.size;
  }

  /** Counts clear() calls: a judgement built on answers read before a clear is not reused. */
  get generation(): number {
    return this.clears;
  }

  clear(): void {
    this.cache.clear();
    this.inflight.clear();
    this.clears++;
  }

  /** Lookups bound to one request: `allCached()` tells the log whether DNS was asked. */
  forRequest(): { dns: IprevDns; allCached: () => boolean } {
    let everyLookupCached = true;
    const get = (key: string): Promise<Outcome> => {
      const cached = this.fresh(key);
      if (cached !== undefined) {
        this.stats.hits++;
        return Promise.resolve(cached);
      }
      everyLookupCached = false;
      const pending = this.inflight.get(key);
      if (pending !== undefined) {
        this.stats.inflightJoins++;
        return pending;
      }
      this.stats.misses++;
      return this.loadAndStore(key);
    };
    return {
      dns: {
        lookupPtr: (name) => get(ptrKey(name)) as Promise<PtrOutcome>,
        lookupAddresses: (name, family) => get(addressKey(name, family)) as Promise<AddressOutcome>,
      },
      allCached: () => everyLookupCached,
    };
  }

  /**
   * Answers already cached, read without waiting. `commit()` counts what was read as hits once
   * the caller used them; a caller that falls back to forRequest() does not commit, so nothing
   * is counted twice. `expiresAt()` is when the first of the answers read expires, on the
   * cache's clock: a judgement built on them holds until then.
   */
  known(): { answers: KnownAnswers; commit: () => number; expiresAt: () => number } {
    const keys: string[] = [];
    const get = (key: string): Outcome | undefined => {
      const outcome = this.fresh(key);
      if (outcome !== undefined) keys.push(key);
      return outcome;
    };
    return {
      answers: {
        ptr: (name) => get(ptrKey(name)) as PtrOutcome | undefined,
        addresses: (name, family) => get(addressKey(name, family)) as AddressOutcome | undefined,
      },
      commit: () => {
        this.stats.hits += keys.length;
        return keys.length;
      },
      expiresAt: () => keys.reduce((first, key) => Math.min(first, this.cache.peek(key)?.expiresAt ?? Number.NEGATIVE_INFINITY), Number.POSITIVE_INFINITY),
    };
  }

  /** Count answers used again without reading them (a judgement reused while they are fresh). */
  countHits(count: number): void {
    this.stats.hits += count;
  }

  /** The clock the cache's TTLs run on. */
  now(): number {
    return this.clock.now();
  }

  /** Ask upstream once for a key and keep the outcome for its TTL (unless the cache was cleared meanwhile). */
  private loadAndStore(requested: string): Promise<Outcome> {
    // A key may hold a peer's HELO name, cut from the request's text: keep a copy that does not
    // pin that text for as long as the answer is cached.
    const key = detachedCopy(requested);
    const generation = this.clears;
    const settle = (outcome: Outcome): Outcome => {
      if (this.clears !== generation) return outcome;
      this.inflight.delete(key);
      this.cache.set(key, { outcome, expiresAt: this.clock.now() + this.ttlFor(key, outcome) });
      return outcome;
    };
    // Upstream outcomes are values; a throw would be a bug, and is a temporary failure here.
    const load = this.load(key).then(settle, () => {
      if (this.clears === generation) this.inflight.delete(key);
      return { kind: 'temporary', code: 'EINTERNAL' } as const;
    });
    this.inflight.set(key, load);
    return load;
  }

  private load(key: string): Promise<Outcome> {
    const space = key.indexOf(' ');
    const type = key.slice(0, space);
    const name = key.slice(space + 1);
    if (type === 'ptr') return this.upstream.lookupPtr(name);
    return this.upstream.lookupAddresses(name, type === 'a' ? 4 : 6);
  }

  /** SPEC cache TTLs: record TTLs below cache_max_ttl for A/AAAA, ptr_ttl for PTR answers. */
  private ttlFor(key: string, outcome: Outcome): number {
    const { maxTtlMs } = this.settings;
    let ttl: number;
    switch (outcome.kind) {
      case 'answer':
        ttl = key.startsWith('ptr ')
          ? this.settings.ptrTtlMs
          : outcome.ttl !== undefined
            ? outcome.ttl * 1000
            : maxTtlMs;
        break;
      case 'not_found':
        ttl = this.settings.negativeTtlMs;
        break;
      case 'temporary':
        ttl = this.settings.temperrorTtlMs;
        break;
    }
    return Math.max(MIN_TTL_MS, Math.min(ttl, maxTtlMs));
  }
}
