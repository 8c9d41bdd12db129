/**
 * The shared throttle store (issue 27 item 3): each step one script in Redis/Valkey within a
 * deadline, this host's memory answering whenever Redis cannot (down, paused, refusing, full,
 * answering garbage), a breaker so a dead Redis costs nothing per request, and the store's
 * coming and going said once each in the log. Memory also keeps every TAT Redis answers, so a
 * network throttled before Redis went away stays throttled after.
 */
import type { ThrottleStoreTarget } from '../config/throttle-store-url.js';
import type { GcraParams } from '../judge/throttle.js';
import type { Logger } from '../log/logger.js';
import type { Breaker } from './throttle-breaker.js';
import type { MemoryThrottle } from './throttle-memory.js';
import { describeStoreError, RedisLink } from './throttle-redis.js';
import { decisionFromReply, scriptArguments } from './throttle-script.js';
import type { ThrottleCounters, ThrottleDecision, ThrottleStore, ThrottleStoreState } from './throttle-types.js';

export interface SharedThrottleOptions {
  readonly params: GcraParams;
  readonly target: Extract<ThrottleStoreTarget, { kind: 'redis' | 'socket' }>;
  readonly password: string | undefined;
  readonly logger: Logger;
  readonly deadlineMs: number;
  readonly keyPrefix: string;
  readonly memory: MemoryThrottle;
  readonly breaker: Breaker;
  readonly connectTimeoutMs: number;
  readonly clock: () => number;
}

type Outcome<T> = { ok: true; value: T } | { ok: false; error: string; timeout: boolean };

/** The promise's value, or why it has none: an error, or no answer within `ms` (the promise is left to settle unheeded). */
function withDeadline<T>(promise: Promise<T>, ms: number): Promise<Outcome<T>> {
  return new Promise((resolve) => {
    const timer = setTimeout(() => resolve({ ok: false, error: `no answer within ${ms} ms`, timeout: true }), ms);
    promise.then(
      (value) => {
        clearTimeout(timer);
        resolve({ ok: true, value });
      },
      (error: unknown) => {
        clearTimeout(timer);
        resolve({ ok: false, error: describeStoreError(error), timeout: false });
      },
    );
  });
}

/** Whether the log has said the store is there: `connecting` until the first answer or failure. */
type Announced = 'connecting' | 'up' | 'away';

export class SharedThrottleStore implements ThrottleStore {
  private params: GcraParams;
  private readonly link: RedisLink;
  private announced: Announced = 'connecting';
  private awaySince = 0;
  private probing = false;
  private connectWatch: ReturnType<typeof setTimeout> | undefined;
  private readonly count: Omit<ThrottleCounters, 'scriptLoads' | 'evictedLive'> = { throttled: 0, storeErrors: 0, storeTimeouts: 0, fallbacks: 0 };

  constructor(private readonly options: SharedThrottleOptions) {
    this.params = options.params;
    // Until the connection is ready nothing is tried: memory answers, and nothing counts as failed.
    options.breaker.trip(options.clock());
    this.link = new RedisLink({
      target: options.target,
      password: options.password,
      connectTimeoutMs: options.connectTimeoutMs,
      events: { ready: () => void this.probe(), error: (message, ready) => this.connectionError(message, ready), connecting: () => this.watchConnect() },
    });
  }

  /**
   * A server that takes the connection but never answers the handshake (paused) sends no error:
   * the first attempt gets connectTimeoutMs from when it starts (node-redis is loaded first, which
   * under load can take a while of its own), then the store is announced away.
   */
  private watchConnect(): void {
    if (this.connectWatch !== undefined) return;
    this.connectWatch = setTimeout(() => {
      if (this.announced === 'connecting') this.goneAway(`not ready within ${this.options.connectTimeoutMs} ms`);
    }, this.options.connectTimeoutMs);
    this.connectWatch.unref();
  }

  get state(): ThrottleStoreState {
    return this.announced === 'up' && this.options.breaker.current === 'closed' ? 'shared' : 'degraded';
  }

  take(key: string, now: number): ThrottleDecision | Promise<ThrottleDecision> {
    if (!this.options.breaker.admit(this.options.clock())) return this.fromMemory(key, now);
    return this.fromShared(key, now);
  }

  setParams(params: GcraParams): void {
    this.params = params;
  }

  counters(): ThrottleCounters {
    return { ...this.count, scriptLoads: this.link.scriptLoads, evictedLive: this.options.memory.evictedLive };
  }

  async close(): Promise<void> {
    clearTimeout(this.connectWatch);
    await this.link.close();
    this.options.memory.clear();
  }

  private async fromShared(key: string, now: number): Promise<ThrottleDecision> {
    const params = this.params;
    const outcome = await withDeadline(this.link.step(this.options.keyPrefix + key, scriptArguments(params, now)), this.options.deadlineMs);
    const decision = outcome.ok ? decisionFromReply(params, outcome.value, now) : undefined;
    if (decision === undefined) {
      this.stepFailed(outcome.ok ? 'the throttle script answered garbage' : outcome.error, !outcome.ok && outcome.timeout);
      return this.fromMemory(key, now);
    }
    this.stepSucceeded();
    this.options.memory.set(key, decision.tat, now);
    if (!decision.allowed) this.count.throttled++;
    return { ...decision, source: 'shared' };
  }

  private fromMemory(key: string, now: number): ThrottleDecision {
    this.count.fallbacks++;
    const decision = this.options.memory.take(this.params, key, now);
    if (!decision.allowed) this.count.throttled++;
    return { ...decision, source: 'local' };
  }

  /** A connection became ready: load the script as the probe, so the store is back without waiting for traffic. */
  private async probe(): Promise<void> {
    if (this.probing) return;
    this.probing = true;
    const outcome = await withDeadline(this.link.loadScript(), Math.max(this.options.deadlineMs, this.options.connectTimeoutMs));
    this.probing = false;
    if (outcome.ok) this.stepSucceeded();
    else this.stepFailed(outcome.error, outcome.timeout);
  }

  private stepSucceeded(): void {
    this.options.breaker.succeeded();
    if (this.announced === 'up') return;
    const fields = { throttle_store: this.options.target.display };
    if (this.announced === 'connecting') this.options.logger.info(fields, 'throttle store connected: budgets are shared');
    else this.options.logger.info({ ...fields, unavailable_ms: this.options.clock() - this.awaySince }, 'throttle store back: budgets are shared again');
    this.announced = 'up';
  }

  private stepFailed(error: string, timeout: boolean): void {
    this.count.storeErrors++;
    if (timeout) this.count.storeTimeouts++;
    const breaker = this.options.breaker;
    const wasProbe = breaker.current === 'probing';
    const opened = breaker.failed(this.options.clock());
    if (breaker.current === 'open') this.goneAway(error);
    // A timed-out connection may sit behind a paused server or a dead path that TCP notices only
    // after minutes: start a fresh one, once per opening (the steps still in flight fail with it).
    if (timeout && (opened || wasProbe)) this.link.reset();
  }

  /** node-redis lost or could not make the connection (it retries by itself). */
  private connectionError(message: string, ready: boolean): void {
    this.count.storeErrors++;
    if (ready) return;
    this.options.breaker.trip(this.options.clock());
    this.goneAway(message);
  }

  /** Say once that memory stands in, with the first reason. */
  private goneAway(reason: string): void {
    if (this.announced === 'away') return;
    this.announced = 'away';
    this.awaySince = this.options.clock();
    this.options.logger.warn(
      { throttle_store: this.options.target.display, reason, deadline_ms: this.options.deadlineMs },
      'throttle store unavailable: throttling from this host\'s memory until it is back',
    );
  }
}
