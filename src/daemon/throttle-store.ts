/**
 * Where throttle budgets live (issue 27): in memory by default (throttle-memory.ts), or shared
 * by an MX fleet through Redis/Valkey (throttle-redis.ts), in which case it fails open, fast,
 * and says so: every shared step has a deadline (default LIMITS.throttleStoreDeadlineMs) past
 * which memory answers; a breaker (throttle-breaker.ts) stops trying after repeated failures and
 * probes again later; one log line when the store goes away, one when it is back; counters for
 * the metrics and a state for /healthz. Nothing here throws or rejects on a store failure.
 *
 * The pipeline calls `take(key, now)` once per message (the per-message memory makes one message
 * count once), with the key from throttleKey (src/judge/throttle.ts).
 */
import { LIMITS } from '../config/limits.js';
import type { ThrottleStoreTarget } from '../config/throttle-store-url.js';
import type { GcraParams } from '../judge/throttle.js';
import type { Logger } from '../log/logger.js';
import { Breaker } from './throttle-breaker.js';
import { MemoryThrottle } from './throttle-memory.js';
import { readPasswordFile } from './throttle-redis.js';
import { SharedThrottleStore } from './throttle-shared.js';
import type { ThrottleCounters, ThrottleDecision, ThrottleStore } from './throttle-types.js';

export type { ThrottleCounters, ThrottleDecision, ThrottleSource, ThrottleStore, ThrottleStoreState } from './throttle-types.js';

export interface ThrottleStoreOptions {
  readonly params: GcraParams;
  readonly target: ThrottleStoreTarget;
  /** The shared store's password, read from this file at start (never logged, never in a URL). */
  readonly passwordFile?: string | undefined;
  readonly logger: Logger;
  /** Per shared step; default LIMITS.throttleStoreDeadlineMs. */
  readonly deadlineMs?: number;
  /** Prepended to every Redis key, so one server can hold other data too. */
  readonly keyPrefix?: string;
  readonly memoryKeys?: number;
  readonly breakerFailures?: number;
  readonly breakerCooldownMs?: number;
  readonly connectTimeoutMs?: number;
  /** Milliseconds, for the breaker's cool-down and the shared store's connect watch (default Date.now). */
  readonly clock?: () => number;
}

export const DEFAULT_THROTTLE_KEY_PREFIX = 'fcrdns-policyd:throttle:';

/** The in-memory store alone. */
export class MemoryThrottleStore implements ThrottleStore {
  readonly state = 'memory' as const;
  private throttled = 0;

  constructor(
    private params: GcraParams,
    private readonly memory = new MemoryThrottle(),
  ) {}

  take(key: string, now: number): ThrottleDecision {
    const decision = this.memory.take(this.params, key, now);
    if (!decision.allowed) this.throttled++;
    return { ...decision, source: 'local' };
  }

  setParams(params: GcraParams): void {
    this.params = params;
  }

  counters(): ThrottleCounters {
    return { throttled: this.throttled, storeErrors: 0, storeTimeouts: 0, fallbacks: 0, scriptLoads: 0, evictedLive: this.memory.evictedLive };
  }

  async close(): Promise<void> {
    this.memory.clear();
  }
}

/** The store the options name, or a problem in words (an unreadable password file). Connecting never fails here: it happens in the background. */
export function createThrottleStore(options: ThrottleStoreOptions): ThrottleStore | string {
  const memory = new MemoryThrottle(options.memoryKeys ?? LIMITS.throttleMemoryKeys);
  if (options.target.kind === 'memory') return new MemoryThrottleStore(options.params, memory);
  let password: string | undefined;
  if (options.passwordFile !== undefined) {
    const read = readPasswordFile(options.passwordFile);
    if ('problem' in read) return read.problem;
    password = read.password;
  }
  const deadlineMs = options.deadlineMs ?? LIMITS.throttleStoreDeadlineMs;
  if (!(deadlineMs > 0 && deadlineMs <= LIMITS.throttleStoreDeadlineCeilingMs)) return `the throttle store deadline must be 1 to ${LIMITS.throttleStoreDeadlineCeilingMs} ms`;
  return new SharedThrottleStore({
    params: options.params,
    target: options.target,
    password,
    logger: options.logger,
    deadlineMs,
    keyPrefix: options.keyPrefix ?? DEFAULT_THROTTLE_KEY_PREFIX,
    memory,
    breaker: new Breaker({ failures: options.breakerFailures ?? LIMITS.throttleBreakerFailures, cooldownMs: options.breakerCooldownMs ?? LIMITS.throttleBreakerCooldownMs }),
    connectTimeoutMs: options.connectTimeoutMs ?? LIMITS.throttleStoreConnectTimeoutMs,
    clock: options.clock ?? Date.now,
  });
}
