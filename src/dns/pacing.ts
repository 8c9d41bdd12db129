/**
 * DNS outcomes are handed to waiting requests, and lookups for new clients started, at most
 * PER_TURN per event-loop turn. When a
 * silent zone's deadlines fire together (thousands of requests started in the same second),
 * settling them all in one timer callback — each going on to judge, log and reply — stalled the
 * loop for over a second, and cached clients, whose answers need no DNS, waited behind it
 * (p99 1.7 s with 10,000 waiting). Paced, the rest go on after the loop has polled for I/O
 * again, so a cached client waits for at most one batch. An ordinary turn delivers a handful:
 * it never waits.
 *
 * What waits is kept in rings, not arrays drained with shift() (O(n) per item once large:
 * 200,000 queued outcomes took 2.2 s to drain, issue 24). An outcome is only a closure until it
 * is delivered: what it settles to is made then. Lookups to start are queued per connection and
 * started round the connections in turn, so one connection's burst cannot keep another
 * connection's request from starting.
 */
const PER_TURN = 64;
/** A ring's first size, and the size it returns to once emptied after growing past SHRINK_ABOVE. */
const RING_START = 16;
const SHRINK_ABOVE = 1024;

/** A first-in first-out queue in a ring that doubles when full: push and shift are O(1). */
export class Ring<T> {
  private items: Array<T | undefined> = new Array<T | undefined>(RING_START);
  private head = 0;
  private count = 0;

  get length(): number {
    return this.count;
  }

  push(item: T): void {
    if (this.count === this.items.length) this.grow();
    this.items[(this.head + this.count) & (this.items.length - 1)] = item;
    this.count++;
  }

  shift(): T | undefined {
    if (this.count === 0) return undefined;
    const item = this.items[this.head];
    this.items[this.head] = undefined;
    this.head = (this.head + 1) & (this.items.length - 1);
    this.count--;
    // A burst's storage is given back once it is over.
    if (this.count === 0 && this.items.length > SHRINK_ABOVE) {
      this.items = new Array<T | undefined>(RING_START);
      this.head = 0;
    }
    return item;
  }

  private grow(): void {
    const size = this.items.length;
    const items = new Array<T | undefined>(size * 2);
    for (let i = 0; i < this.count; i++) items[i] = this.items[(this.head + i) & (size - 1)];
    this.items = items;
    this.head = 0;
  }
}

let deliveredThisTurn = 0;
let turnEndScheduled = false;
/** Outcomes to deliver, in the order they settled (for deadlines: the order they were set). */
const deliveries = new Ring<() => void>();
/** Lookups to start, per connection (or other key), and the keys that have some, in turn. */
const starts = new Map<object, Ring<Startable>>();
const rotation = new Ring<object>();
let startsQueued = 0;
/**
 * Emptied rings, for the next connection whose start must wait: under load a connection's ring
 * empties and is needed again within a turn, and a new one each time was two objects per new
 * client. An emptied ring holds nothing (and at most SHRINK_ABOVE slots).
 */
const spareRings: Array<Ring<Startable>> = [];
const SPARE_RINGS = 16;

/** The next lookup to start, one key after the other. */
function nextStart(): Startable | undefined {
  const key = rotation.shift();
  if (key === undefined) return undefined;
  const ring = starts.get(key) as Ring<Startable>;
  const run = ring.shift();
  if (ring.length > 0) rotation.push(key);
  else {
    starts.delete(key);
    if (spareRings.length < SPARE_RINGS) spareRings.push(ring);
  }
  startsQueued--;
  return run;
}

function turnEnd(): void {
  turnEndScheduled = false;
  deliveredThisTurn = 0;
  // Outcomes first: they finish work and free what it holds; then starts, round the keys.
  while (deliveries.length > 0 && deliveredThisTurn < PER_TURN) {
    deliveredThisTurn++;
    deliveries.shift()?.();
  }
  while (startsQueued > 0 && deliveredThisTurn < PER_TURN) {
    deliveredThisTurn++;
    nextStart()?.start();
  }
  if (deliveries.length > 0 || startsQueued > 0 || deliveredThisTurn > 0) scheduleTurnEnd();
}

function scheduleTurnEnd(): void {
  if (turnEndScheduled) return;
  turnEndScheduled = true;
  setImmediate(turnEnd);
}

/** Run `deliver` now, or in a later turn when this one has delivered PER_TURN already. */
export function paced(deliver: () => void): void {
  scheduleTurnEnd();
  if (deliveredThisTurn < PER_TURN && deliveries.length === 0) {
    deliveredThisTurn++;
    deliver();
  } else deliveries.push(deliver);
}

const NO_KEY = {};

/** Something to start when its turn comes (pacedBegin). */
export interface Startable {
  start(): void;
}

/**
 * Start `item` now, or in a later turn when this one has started or delivered PER_TURN already:
 * 10,000 requests for new clients arriving in one burst would otherwise start their lookups in
 * one poll phase, and the cached client whose request came in the same phase waits for all.
 * `key` (the connection) decides whose turn it is when some must wait.
 */
export function pacedBegin(item: Startable, key: object = NO_KEY): void {
  scheduleTurnEnd();
  if (deliveredThisTurn < PER_TURN && startsQueued === 0) {
    deliveredThisTurn++;
    item.start();
    return;
  }
  queueStart(item, key);
}

function queueStart(item: Startable, key: object): void {
  let ring = starts.get(key);
  if (ring === undefined) {
    ring = spareRings.pop() ?? new Ring<Startable>();
    starts.set(key, ring);
    rotation.push(key);
  }
  ring.push(item);
  startsQueued++;
}

/** Outcomes and starts waiting for a later turn. */
export function pacedBacklog(): number {
  return deliveries.length + startsQueued;
}
