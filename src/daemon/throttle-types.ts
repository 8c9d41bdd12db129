/**
 * The throttle store's interface and answers (issue 27), apart from its implementations so the
 * in-memory and shared stores (throttle-store.ts, throttle-shared.ts) share them without a circle.
 */
import type { GcraDecision, GcraParams } from '../judge/throttle.js';

/** Where an answer came from: the shared store, or this host's memory (alone, or standing in). */
export type ThrottleSource = 'shared' | 'local';

export interface ThrottleDecision extends GcraDecision {
  readonly source: ThrottleSource;
}

/** For /healthz: `memory` (no shared store configured), `shared`, or `degraded` (memory stands in). */
export type ThrottleStoreState = 'shared' | 'degraded' | 'memory';

/** Plain numbers since start, for the metrics. */
export interface ThrottleCounters {
  /** Answers that throttled (the key's budget was spent). */
  throttled: number;
  /** Failed shared-store steps and connection errors (refused, dropped, WRONGPASS, OOM, garbage). */
  storeErrors: number;
  /** Steps that got no answer within the deadline (also in storeErrors). */
  storeTimeouts: number;
  /** Answers from memory while a shared store is configured. */
  fallbacks: number;
  /** SCRIPT LOADs sent to the shared store (one at each connect, one per NOSCRIPT). */
  scriptLoads: number;
  /** Networks the in-memory store forgot before their budget came back (its cap was reached). */
  evictedLive: number;
}

export interface ThrottleStore {
  /** One event of a network: synchronous from memory, a promise when the shared store is asked. */
  take(key: string, now: number): ThrottleDecision | Promise<ThrottleDecision>;
  /** New rate or burst (a reload); the stored TATs stay. */
  setParams(params: GcraParams): void;
  readonly state: ThrottleStoreState;
  counters(): ThrottleCounters;
  close(): Promise<void>;
}
