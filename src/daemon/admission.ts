/**
 * Admission of new clients to DNS: whether a request for a client not in the cache may start
 * lookups, or is answered at once per temperror_action because the daemon is under pressure.
 * Two bounds, each counted and said in the log:
 * - the heap nearly full (src/daemon/heap-guard.ts): `EHEAPFULL`;
 * - too many requests already waiting for DNS across all connections: `EBUSY`. The
 *   per-connection bounds (64 pipelined × max_connections) admit far more than the heap holds
 *   (~5.7 KB each, plus their queries): past LIMITS.maxWaitingRequests a new client is answered
 *   as it would be when its lookups timed out, instead of the daemon dying of "heap limit".
 * Cached clients never come here: they are judged as usual whatever the pressure.
 *
 * What a waiting request costs is counted too, not only the request (issue 24: 960 requests
 * whose 50 PTR names each fanned out into a silent forward zone ended the daemon at a quarter of
 * the request bound): the DNS queries in flight (each with its timer and, later, its outcome)
 * are bounded by LIMITS.maxQueriesInFlight, and the heap guard and that bound are asked again
 * before a request fans out into its forward lookups (fanOutRefusal). And the budget is shared
 * fairly: a connection that already has a request waiting may only use part of it, so the rest
 * stays open to connections with none waiting — every Postfix connection (POSTFIX-FACTS 2).
 */
import { performance } from 'node:perf_hooks';
import { queriesInFlight } from '../dns/resolver.js';
import { createHeapGuard, type HeapGuard, type HeapReading } from './heap-guard.js';
import { LIMITS } from '../config/limits.js';
import type { Logger } from '../log/logger.js';

export type Refusal = 'EHEAPFULL' | 'EBUSY';

/** Each pressure warning is said at most this often; the counters go on meanwhile. */
const WARNING_EVERY_MS = 60_000;

/** The part of the waiting budget a connection with a request waiting already may use. */
const SHARED_WAITING = Math.floor(LIMITS.maxWaitingRequests * LIMITS.waitingSharedFraction);

export class Admission {
  private readonly heapGuard: HeapGuard;
  private waitingNow = 0;
  private busyShed = 0;
  private lastBusyWarning = Number.NEGATIVE_INFINITY;
  private lateCount = 0;
  private lastLateWarning = Number.NEGATIVE_INFINITY;

  constructor(
    private readonly logger: Logger,
    heapReading?: () => HeapReading,
  ) {
    this.heapGuard = createHeapGuard((shedding, reading, shedMeanwhile) => {
      const heap = { heap_used_mb: Math.round(reading.used / 2 ** 20), heap_limit_mb: Math.round(reading.limit / 2 ** 20) };
      if (shedding) {
        logger.warn(heap, 'heap nearly full: new uncached clients are answered per temperror_action without DNS until it frees up');
      } else logger.info({ ...heap, shed: shedMeanwhile }, 'heap freed up: new clients are looked up again');
    }, heapReading);
  }

  /**
   * Undefined when a new client may ask DNS, else why not (the refusal is counted).
   * `connectionWaiting` is how many requests of the same connection wait already.
   */
  refusal(connectionWaiting = 0): Refusal | undefined {
    if (this.heapGuard.shedding()) {
      this.heapGuard.count();
      return 'EHEAPFULL';
    }
    const bound = connectionWaiting > 0 ? SHARED_WAITING : LIMITS.maxWaitingRequests;
    if (this.waitingNow >= bound || queriesInFlight() >= LIMITS.maxQueriesInFlight) {
      this.noteBusy();
      return 'EBUSY';
    }
    return undefined;
  }

  /** Undefined when a waiting request may send `queries` forward lookups now, else why not (counted). */
  fanOutRefusal(queries: number): Refusal | undefined {
    if (this.heapGuard.shedding()) {
      this.heapGuard.count();
      return 'EHEAPFULL';
    }
    if (queriesInFlight() + queries > LIMITS.maxQueriesInFlight) {
      this.noteBusy();
      return 'EBUSY';
    }
    return undefined;
  }

  /** Count a request whose deadline passed before its lookups could start (answered as EBUSY). */
  countLate(): void {
    this.busyShed++;
    this.lateCount++;
    const now = performance.now();
    if (now - this.lastLateWarning < WARNING_EVERY_MS) return;
    this.lastLateWarning = now;
    this.logger.warn(
      { late: this.lateCount, per_connection: LIMITS.maxWaitingPerConnection },
      'requests waited past their deadline for their lookups to start (a connection sending many at once): answered per temperror_action',
    );
  }

  /** Hold a place among the requests waiting for DNS; release() gives it back once answered. */
  hold(): void {
    this.waitingNow++;
  }

  release(): void {
    this.waitingNow--;
  }

  /** Requests waiting for DNS now (a gauge). */
  get waiting(): number {
    return this.waitingNow;
  }

  /** Requests answered without DNS so far, by reason (counters). */
  shed(): { heap: number; waiting: number } {
    return { heap: this.heapGuard.shed, waiting: this.busyShed };
  }

  close(): void {
    this.heapGuard.close();
  }

  private noteBusy(): void {
    this.busyShed++;
    const now = performance.now();
    if (now - this.lastBusyWarning < WARNING_EVERY_MS) return;
    this.lastBusyWarning = now;
    this.logger.warn(
      { waiting: this.waitingNow, limit: LIMITS.maxWaitingRequests, queries_in_flight: queriesInFlight(), shed: this.busyShed },
      'too many requests waiting for DNS: new clients are answered per temperror_action until some are answered',
    );
  }
}
