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
import type { AddressOutcome, IprevDns, PtrOutcome, QueryListener, QuerySender } from './resolver.js';
import type { KnownAnswers } from './iprev.js';
import { LIMITS } from '../config/limits.js';

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

/** What to ask: a PTR record, or the addresses of one family. */
type Kind = 'ptr' | 4 | 6;

/**
 * Told once when a lookup the cache could not answer at once has its outcome (the cold path,
 * src/daemon/cold-path.ts): `slot` says which of the caller's lookups it was, so one object
 * listens for all of a request's lookups without a closure per lookup.
 */
export interface LookupListener {
  settled(outcome: Outcome, slot: number): void;
}

/** An upstream asked with promises (a test's) or, when it can, by callback (QuerySender). */
type Upstream = IprevDns & Partial<QuerySender>;

const INTERNAL_FAILURE = { kind: 'temporary', code: 'EINTERNAL' } as const;

/** One query in flight for a key, and the lookups waiting for it. */
class Pending implements QueryListener<Outcome> {
  /** The first lookup inline (most keys have only one), the ones that joined it after. */
  private readonly first: LookupListener;
  private readonly firstSlot: number;
  private joined: Array<{ listener: LookupListener; slot: number }> | undefined;

  constructor(
    private readonly cache: LookupCache,
    readonly key: string,
    /** A PTR lookup (its answers are kept ptr_ttl), not an address lookup. */
    readonly ptr: boolean,
    readonly generation: number,
    listener: LookupListener,
    slot: number,
  ) {
    this.first = listener;
    this.firstSlot = slot;
  }

  join(listener: LookupListener, slot: number): void {
    (this.joined ??= []).push({ listener, slot });
  }

  answered(outcome: Outcome): void {
    // Called from c-ares' callback: a throw here (a bug) would end the process and leave the
    // lookups waiting. The outcome is still told; it is just not kept.
    try {
      this.cache.store(this, outcome);
    } catch {
      this.cache.forget(this);
    }
    this.tell(outcome);
  }

  /** Upstream outcomes are values; a throw would be a bug, and is a temporary failure here. */
  failed(): void {
    this.cache.forget(this);
    this.tell(INTERNAL_FAILURE);
  }

  private tell(outcome: Outcome): void {
    this.first.settled(outcome, this.firstSlot);
    if (this.joined !== undefined) for (const { listener, slot } of this.joined) listener.settled(outcome, slot);
  }
}

/** What `known()` read, so a judgement built on it can be counted and dated. */
class KnownRead implements KnownAnswers {
  /** The keys read, once one is (a new client's attempt reads none: no array for it). */
  private keys: string[] | undefined;

  constructor(private readonly cache: LookupCache) {}

  ptr(name: string): PtrOutcome | undefined {
    return this.read(ptrKey(name)) as PtrOutcome | undefined;
  }

  addresses(name: string, family: 4 | 6): AddressOutcome | undefined {
    return this.read(addressKey(name, family)) as AddressOutcome | undefined;
  }

  /** Count what was read as hits, once the caller used it; how many that was. */
  commit(): number {
    const count = this.keys?.length ?? 0;
    this.cache.countHits(count);
    return count;
  }

  /** When the first of the answers read expires, on the cache's clock. */
  expiresAt(): number {
    let first = Number.POSITIVE_INFINITY;
    for (const key of this.keys ?? []) first = Math.min(first, this.cache.expiryOf(key));
    return first;
  }

  private read(key: string): Outcome | undefined {
    const outcome = this.cache.freshOutcome(key);
    if (outcome !== undefined) (this.keys ??= []).push(key);
    return outcome;
  }
}

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

/**
 * Cache keys. A PTR lookup's key is its reverse name itself: the daemon builds it (ClientIp.arpa,
 * kept on the client record) and a name in in-addr.arpa or ip6.arpa never holds a space, so it
 * is already one flat string with its hash computed, and no other key can equal it. An address
 * lookup's key is the record type, a space, the name. Joined, not concatenated: join() makes one
 * flat string with the characters copied, so a key kept in the cache is one object and pins
 * nothing of the text a HELO name was cut from (a concatenation, or a detachedCopy of one, is two
 * objects each kept for as long as the entry, and every full collection marks the 100,000
 * entries' objects).
 */
const ptrKey = (reverseName: string): string => reverseName;
const addressKey = (name: string, family: 4 | 6): string => [family === 4 ? 'a' : 'aaaa', name].join(' ');
const keyOf = (kind: Kind, name: string): string => (kind === 'ptr' ? ptrKey(name) : addressKey(name, kind));

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
  private readonly inflight = new Map<string, Pending>();
  private readonly clock: Clock;
  private clears = 0;

  /** `stats` may be shared with an earlier cache, so counters survive a reload. */
  constructor(
    private readonly upstream: Upstream,
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

  /** The outcome kept for a key while it is fresh; an expired one is dropped. Not counted. */
  freshOutcome(key: string): Outcome | undefined {
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

  /**
   * The cold path's lookups: the outcome now when it is cached (counted a hit), else undefined,
   * and `listener.settled(outcome, slot)` once the query it joined or sent has ended.
   */
  askPtr(name: string, listener: LookupListener, slot: number): PtrOutcome | undefined {
    return this.ask('ptr', name, listener, slot) as PtrOutcome | undefined;
  }

  askAddresses(name: string, family: 4 | 6, listener: LookupListener, slot: number): AddressOutcome | undefined {
    return this.ask(family, name, listener, slot) as AddressOutcome | undefined;
  }

  /**
   * Answers already cached, read without waiting. `commit()` counts what was read as hits once
   * the caller used them; a caller that falls back to DNS does not commit, so nothing is counted
   * twice. `expiresAt()` is when the first of the answers read expires, on the cache's clock: a
   * judgement built on them holds until then.
   */
  known(): KnownRead {
    return new KnownRead(this);
  }

  /** Count answers used again without reading them (a judgement reused while they are fresh). */
  countHits(count: number): void {
    this.stats.hits += count;
  }

  /** When a cached key's outcome expires, on the cache's clock (-Infinity when it is gone). */
  expiryOf(key: string): number {
    return this.cache.peek(key)?.expiresAt ?? Number.NEGATIVE_INFINITY;
  }

  /** The clock the cache's TTLs run on. */
  now(): number {
    return this.clock.now();
  }

  /** Keep a query's outcome for its TTL, unless the cache was cleared meanwhile. */
  store(pending: Pending, outcome: Outcome): void {
    if (this.clears !== pending.generation) return;
    this.inflight.delete(pending.key);
    // Whole milliseconds: a small integer is kept in the entry itself, a fraction in an object of its own.
    this.cache.set(pending.key, { outcome, expiresAt: Math.ceil(this.clock.now() + this.ttlFor(pending.ptr, outcome)) });
  }

  /** Drop a query that failed without an outcome; the next lookup asks again. */
  forget(pending: Pending): void {
    if (this.clears === pending.generation) this.inflight.delete(pending.key);
  }

  private ask(kind: Kind, name: string, listener: LookupListener, slot: number): Outcome | undefined {
    const key = keyOf(kind, name);
    const cached = this.freshOutcome(key);
    if (cached !== undefined) {
      this.stats.hits++;
      return cached;
    }
    this.join(key, kind, name, listener, slot);
    return undefined;
  }

  /** Wait for the query in flight for this key, or send one. */
  private join(requested: string, kind: Kind, name: string, listener: LookupListener, slot: number): void {
    const joined = this.inflight.get(requested);
    if (joined !== undefined) {
      this.stats.inflightJoins++;
      joined.join(listener, slot);
      return;
    }
    this.stats.misses++;
    // A key may hold a peer's HELO name, cut from the request's text: keyOf's join copied it.
    const pending = new Pending(this, requested, kind === 'ptr', this.clears, listener, slot);
    this.inflight.set(pending.key, pending);
    this.send(kind, name, pending);
  }

  private send(kind: Kind, name: string, pending: Pending): void {
    const { upstream } = this;
    if (upstream.sendPtr !== undefined && upstream.sendAddresses !== undefined) {
      if (kind === 'ptr') upstream.sendPtr(name, pending);
      else upstream.sendAddresses(name, kind, pending);
      return;
    }
    const query = kind === 'ptr' ? upstream.lookupPtr(name) : upstream.lookupAddresses(name, kind);
    query.then(
      (outcome) => pending.answered(outcome),
      () => pending.failed(),
    );
  }

  /** SPEC cache TTLs: record TTLs below cache_max_ttl for A/AAAA, ptr_ttl for PTR answers. */
  private ttlFor(ptr: boolean, outcome: Outcome): number {
    const { maxTtlMs } = this.settings;
    let ttl: number;
    switch (outcome.kind) {
      case 'answer':
        ttl = ptr
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
