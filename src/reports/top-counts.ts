/**
 * Counts per key with bounded memory, for the top-N lists of `report`: a capped map that, when
 * it reaches its capacity, keeps the most frequent half and drops the rest (the "frequent items"
 * scheme of Misra–Gries, made amortised by dropping half at once instead of decrementing all).
 * Exact while the distinct keys fit; past that, every key that makes up more than 2 / capacity
 * of the total is still kept, and a kept count may be low by what it had when it was last
 * dropped — `approximate` says when that happened. Memory: capacity entries, whatever the log.
 */
export interface TopEntry {
  readonly key: string;
  readonly count: number;
  /** Epoch ms of the last line counted for it. */
  readonly lastSeen: number;
}

export class TopCounts {
  private readonly entries = new Map<string, { count: number; lastSeen: number }>();
  private dropped = false;

  constructor(private readonly capacity = 4096) {}

  add(key: string, time: number): void {
    const entry = this.entries.get(key);
    if (entry) {
      entry.count++;
      if (time > entry.lastSeen) entry.lastSeen = time;
      return;
    }
    if (this.entries.size >= this.capacity) this.halve();
    this.entries.set(key, { count: 1, lastSeen: time });
  }

  /** True when keys were dropped: counts are then lower bounds. */
  get approximate(): boolean {
    return this.dropped;
  }

  /** The n most frequent keys, most frequent first (ties: most recent first). */
  top(n: number): TopEntry[] {
    return [...this.entries]
      .map(([key, { count, lastSeen }]) => ({ key, count, lastSeen }))
      .sort((a, b) => b.count - a.count || b.lastSeen - a.lastSeen || (a.key < b.key ? -1 : 1))
      .slice(0, n);
  }

  private halve(): void {
    const kept = [...this.entries].sort((a, b) => b[1].count - a[1].count).slice(0, Math.floor(this.capacity / 2));
    this.entries.clear();
    for (const [key, entry] of kept) this.entries.set(key, entry);
    this.dropped = true;
  }
}

/**
 * Duration percentiles with bounded memory: a histogram of logarithmic buckets (2 % wide, from
 * 1 µs to over an hour), so p50 / p99 are within 2 % whatever the number of lines.
 */
export class DurationHistogram {
  private static readonly GROWTH = 1.02;
  private static readonly MIN_MS = 0.001;
  private readonly buckets = new Float64Array(1200);
  private count = 0;
  private maximum = 0;

  add(ms: number): void {
    if (!(ms >= 0)) return;
    this.count++;
    if (ms > this.maximum) this.maximum = ms;
    const index = ms <= DurationHistogram.MIN_MS ? 0 : Math.min(this.buckets.length - 1, Math.ceil(Math.log(ms / DurationHistogram.MIN_MS) / Math.log(DurationHistogram.GROWTH)));
    this.buckets[index] = (this.buckets[index] ?? 0) + 1;
  }

  get total(): number {
    return this.count;
  }

  get max(): number {
    return this.maximum;
  }

  /** The p-th percentile (0–100) in ms: the upper edge of the bucket that holds it. */
  percentile(p: number): number {
    if (this.count === 0) return 0;
    const rank = Math.max(1, Math.ceil((p / 100) * this.count));
    let seen = 0;
    for (let i = 0; i < this.buckets.length; i++) {
      seen += this.buckets[i] ?? 0;
      if (seen >= rank) return Math.min(this.maximum, DurationHistogram.MIN_MS * DurationHistogram.GROWTH ** i);
    }
    return this.maximum;
  }
}
