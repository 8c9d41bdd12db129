/**
 * The shared throttle store's circuit breaker (issue 27: "a circuit breaker stops trying for a
 * while after repeated failures"). Closed: every step goes to Redis. After `failures` consecutive
 * failed steps it opens: steps go to memory without trying, so a dead Redis costs no deadline
 * per request. After `cooldownMs` one step probes (half-open); its success closes the breaker,
 * its failure opens it for another cool-down. Time comes in as numbers; no timers.
 */
export type BreakerState = 'closed' | 'open' | 'probing';

export interface BreakerOptions {
  readonly failures: number;
  readonly cooldownMs: number;
}

export class Breaker {
  private state: BreakerState = 'closed';
  private consecutive = 0;
  private retryAt = 0;

  constructor(private readonly options: BreakerOptions) {}

  get current(): BreakerState {
    return this.state;
  }

  /** May a step try the shared store at `now`? In the open state the first caller past the cool-down becomes the probe. */
  admit(now: number): boolean {
    if (this.state === 'closed') return true;
    if (this.state === 'probing' || now < this.retryAt) return false;
    this.state = 'probing';
    return true;
  }

  /** A step (or the probe) succeeded: true when this closed an open breaker. */
  succeeded(): boolean {
    this.consecutive = 0;
    if (this.state === 'closed') return false;
    this.state = 'closed';
    return true;
  }

  /**
   * A step failed at `now`: true when this opened a closed breaker. A failed probe re-arms the
   * cool-down; a step that was already under way when the breaker opened changes nothing.
   */
  failed(now: number): boolean {
    this.consecutive++;
    if (this.state === 'open') return false;
    if (this.state === 'closed' && this.consecutive < this.options.failures) return false;
    const opened = this.state === 'closed';
    this.state = 'open';
    this.retryAt = now + this.options.cooldownMs;
    return opened;
  }

  /** Open now without counting (the store is known to be away: not connected yet, or disconnected). */
  trip(now: number): boolean {
    const opened = this.state === 'closed';
    this.state = 'open';
    this.retryAt = now + this.options.cooldownMs;
    return opened;
  }

  /** Let the next step probe at once (the connection just became ready). */
  probeNow(): void {
    if (this.state === 'open') this.retryAt = 0;
  }
}
