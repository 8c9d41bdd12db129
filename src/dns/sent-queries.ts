/**
 * Queries sent by callback, for the cold path (src/daemon/cold-path.ts): one c-ares callback per
 * query and no promise, closure chain or timer of its own, as the floor server
 * (bench/floor-server.ts) asks them; `npm run bench -- --only cold-local` and
 * `npm run bench:handler -- --cold` guard what that saves. Every query ends exactly once, within
 * its deadline (queryDeadlineMs, src/dns/resolver.ts; the `check` command's promise-shaped
 * lookups are these in a promise), and its outcome is handed over paced (src/dns/pacing.ts).
 */
import { performance } from 'node:perf_hooks';
import { LIMITS } from '../config/limits.js';
import { paced } from './pacing.js';
import { classifyDnsError, queryEnded, queryStarted, TIMED_OUT, type DnsCallback, type DnsOutcome, type QueryObserver } from './outcome.js';
import type { AddressOutcome, PtrOutcome } from './outcome.js';

/** Told once when a query sent by callback ends: its answer, not-found, temporary failure or deadline. */
export interface QueryListener<T> {
  answered(outcome: T): void;
}

/**
 * The lookups in callback form, for the cold path (src/daemon/cold-path.ts): one c-ares callback
 * per query and no promise, closure chain or timer of its own, as the floor server
 * (bench/floor-server.ts) asks. Every query ends exactly once, within its deadline; outcomes are
 * handed over paced.
 */
export interface QuerySender {
  sendPtr(reverseName: string, listener: QueryListener<PtrOutcome>): void;
  sendAddresses(name: string, family: 4 | 6, listener: QueryListener<AddressOutcome>): void;
}

/** What the sweep needs of an outstanding query. */
interface Outstanding {
  readonly type: 'ptr' | 'a' | 'aaaa';
  readonly startedAt: number;
  settle(outcome: typeof TIMED_OUT): void;
}

/** One query sent by callback, until it ends: by c-ares' callback or past its deadline. */
class SentQuery<T, R> implements Outstanding {
  readonly startedAt = performance.now();
  private counted = true;
  /** Who hears the outcome, until it has: a query past its deadline may stay with c-ares for a while. */
  private listener: QueryListener<R> | undefined;

  constructor(
    private readonly owner: SentQueries,
    readonly type: 'ptr' | 'a' | 'aaaa',
    private readonly shape: (outcome: DnsOutcome<T>) => R,
    listener: QueryListener<R>,
  ) {
    this.listener = listener;
  }

  /** c-ares' callback; it counts the query out of those in flight, however late it comes. */
  readonly done: DnsCallback<T> = (error, records) => {
    if (this.counted) queryEnded();
    this.counted = false;
    this.settle(error ? classifyDnsError(error) : { kind: 'answer', records });
  };

  /**
   * The first of the answer and the deadline decides; the listener hears once. It is let go of
   * then: c-ares keeps `done` (and so this query) until it gives up itself, and a listener held
   * that long would keep its whole waiting request (under a hostile zone's flood on Debian 13's
   * node, 15–25 MB more at the peak).
   */
  settle(outcome: DnsOutcome<T>): void {
    const listener = this.listener;
    if (listener === undefined) return;
    this.listener = undefined;
    this.owner.ended(this, outcome.kind);
    const shape = this.shape;
    paced(() => listener.answered(shape(outcome)));
  }
}

/**
 * The queries sent by callback and not yet ended, in the order they were sent (so by deadline:
 * every query of one QuerySender has the same). One interval timer ends those past the deadline,
 * instead of a timer per query; it runs only while some are outstanding.
 */
export class SentQueries {
  private readonly outstanding = new Set<Outstanding>();
  private sweeper: NodeJS.Timeout | undefined;

  constructor(
    private readonly deadlineMs: number,
    private readonly observe: QueryObserver | undefined,
  ) {}

  send<T, R>(type: 'ptr' | 'a' | 'aaaa', shape: (outcome: DnsOutcome<T>) => R, listener: QueryListener<R>, start: (done: DnsCallback<T>) => void): void {
    const query = new SentQuery(this, type, shape, listener);
    queryStarted();
    this.outstanding.add(query);
    // Kept referenced: it runs only while queries are out (c-ares' own handles keep the process
    // up then anyway), and a resolver that never calls back still ends by its deadline.
    this.sweeper ??= setInterval(() => this.sweep(), LIMITS.querySweepMs);
    try {
      start(query.done);
    } catch (error) {
      // node:dns throws at once for a name it cannot ask (EBADNAME): an outcome like any other.
      query.done(error as NodeJS.ErrnoException, undefined as T);
    }
  }

  ended(query: Outstanding, kind: DnsOutcome<unknown>['kind']): void {
    this.outstanding.delete(query);
    this.observe?.(query.type, kind, (performance.now() - query.startedAt) / 1000);
    if (this.outstanding.size === 0 && this.sweeper !== undefined) {
      clearInterval(this.sweeper);
      this.sweeper = undefined;
    }
  }

  private sweep(): void {
    const expiredBefore = performance.now() - this.deadlineMs;
    for (const query of this.outstanding) {
      if (query.startedAt > expiredBefore) break;
      query.settle(TIMED_OUT);
    }
  }
}
