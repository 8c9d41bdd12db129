/**
 * The in-memory throttle store (issue 27): one TAT per network key, least recently used first out
 * past a fixed cap (LIMITS.throttleMemoryKeys), keys whose TAT has passed dropped as they are met.
 * It is the store of a single host, and the fallback of the shared one (throttle-store.ts).
 *
 * Memory per key is what bounds it: the key string and its Map entry, plus one slot in typed
 * arrays (the TAT as a float64 and the LRU links as int32s) instead of an object per key, so a
 * million distinct networks cost the cap, not a million objects (measured in
 * test/daemon/throttle-store.test.ts; LIMITS.heapBytesPerThrottleKey).
 */
import { LIMITS } from '../config/limits.js';
import { gcraExpired, gcraTake, type GcraDecision, type GcraParams } from '../judge/throttle.js';
import { flatCopy } from '../util/text.js';

const NONE = -1;
/** Slots allocated at first; the arrays double up to the cap, so an idle limiter costs little. */
const INITIAL_SLOTS = 1024;

export class MemoryThrottle {
  private readonly slots = new Map<string, number>();
  private keys: Array<string | undefined> = [];
  private tats: Float64Array = new Float64Array(0);
  private newer: Int32Array = new Int32Array(0);
  private older: Int32Array = new Int32Array(0);
  /** Most and least recently used slots. */
  private head = NONE;
  private tail = NONE;
  private readonly free: number[] = [];
  /** Keys forgotten before their TAT passed (the cap was reached): their networks got fresh budget. */
  evictedLive = 0;

  constructor(readonly capacity: number = LIMITS.throttleMemoryKeys) {
    if (!Number.isSafeInteger(capacity) || capacity < 1) throw new RangeError(`throttle memory capacity must be a positive integer, not ${capacity}`);
  }

  get size(): number {
    return this.slots.size;
  }

  /** One event of `key` at `now`: the GCRA decision, stored. */
  take(params: GcraParams, key: string, now: number): GcraDecision {
    const decision = gcraTake(params, this.get(key, now), now);
    // A throttled event leaves its TAT but counts as use: a network still sending stays in memory.
    this.set(key, decision.tat, now);
    this.sweep(now);
    return decision;
  }

  /** The key's live TAT, or undefined (an expired one is dropped). */
  get(key: string, now: number): number | undefined {
    const slot = this.slots.get(key);
    if (slot === undefined) return undefined;
    const tat = this.tats[slot] ?? 0;
    if (gcraExpired(tat, now)) {
      this.drop(slot);
      return undefined;
    }
    return tat;
  }

  /** Store a key's TAT (from this store's decision, or the shared store's answer, to keep the fallback warm). */
  set(key: string, tat: number, now: number): void {
    let slot = this.slots.get(key);
    if (slot === undefined) {
      if (gcraExpired(tat, now)) return;
      slot = this.claim(now);
      // One flat string, kept as both the map's key and the slot's: the caller's key is often a
      // concatenation, which as a map key would stay a cons string pointing at its flattened copy.
      const kept = flatCopy(key);
      this.keys[slot] = kept;
      this.slots.set(kept, slot);
      this.link(slot);
    } else {
      this.touch(slot);
    }
    this.tats[slot] = tat;
  }

  clear(): void {
    this.slots.clear();
    this.keys = [];
    this.tats = new Float64Array(0);
    this.newer = new Int32Array(0);
    this.older = new Int32Array(0);
    this.head = this.tail = NONE;
    this.free.length = 0;
  }

  /** Drop up to a few expired keys from the cold end, so idle networks do not wait for the cap. */
  private sweep(now: number): void {
    for (let i = 0; i < LIMITS.throttleSweepPerTake && this.tail !== NONE; i++) {
      if (!gcraExpired(this.tats[this.tail] ?? 0, now)) return;
      this.drop(this.tail);
    }
  }

  /** A free slot: a dropped one, a new one, or (at the cap) the least recently used key's. */
  private claim(now: number): number {
    const reused = this.free.pop();
    if (reused !== undefined) return reused;
    if (this.slots.size < this.capacity) {
      const slot = this.slots.size;
      if (slot >= this.tats.length) this.grow();
      return slot;
    }
    const oldest = this.tail;
    if (!gcraExpired(this.tats[oldest] ?? 0, now)) this.evictedLive++;
    this.drop(oldest);
    return this.free.pop() ?? oldest;
  }

  private grow(): void {
    const length = Math.min(this.capacity, Math.max(INITIAL_SLOTS, this.tats.length * 2));
    const grown = (from: Int32Array): Int32Array => {
      const to = new Int32Array(length);
      to.set(from);
      return to;
    };
    const tats = new Float64Array(length);
    tats.set(this.tats);
    this.tats = tats;
    this.newer = grown(this.newer);
    this.older = grown(this.older);
  }

  private drop(slot: number): void {
    const key = this.keys[slot];
    if (key !== undefined) this.slots.delete(key);
    this.keys[slot] = undefined;
    this.unlink(slot);
    this.free.push(slot);
  }

  private touch(slot: number): void {
    if (slot === this.head) return;
    this.unlink(slot);
    this.link(slot);
  }

  /** Make the slot the most recently used. */
  private link(slot: number): void {
    this.newer[slot] = NONE;
    this.older[slot] = this.head;
    if (this.head !== NONE) this.newer[this.head] = slot;
    this.head = slot;
    if (this.tail === NONE) this.tail = slot;
  }

  private unlink(slot: number): void {
    const newer = this.newer[slot] ?? NONE;
    const older = this.older[slot] ?? NONE;
    if (newer !== NONE) this.older[newer] = older;
    else this.head = older;
    if (older !== NONE) this.newer[older] = newer;
    else this.tail = newer;
  }
}
