/**
 * DNS outcomes are handed to waiting requests, and lookups for new clients started, at most
 * PER_TURN per event-loop turn. When a
 * silent zone's deadlines fire together (thousands of requests started in the same second),
 * settling them all in one timer callback — each going on to judge, log and reply — stalled the
 * loop for over a second, and cached clients, whose answers need no DNS, waited behind it
 * (p99 1.7 s with 10,000 waiting). Paced, the rest go on after the loop has polled for I/O
 * again, so a cached client waits for at most one batch. An ordinary turn delivers a handful:
 * it never waits.
 */
const PER_TURN = 64;

let deliveredThisTurn = 0;
let turnEndScheduled = false;
const queued: Array<() => void> = [];

function turnEnd(): void {
  turnEndScheduled = false;
  deliveredThisTurn = 0;
  while (queued.length > 0 && deliveredThisTurn < PER_TURN) {
    deliveredThisTurn++;
    const run = queued.shift();
    run?.();
  }
  if (queued.length > 0 || deliveredThisTurn > 0) scheduleTurnEnd();
}

function scheduleTurnEnd(): void {
  if (turnEndScheduled) return;
  turnEndScheduled = true;
  setImmediate(turnEnd);
}

/** Run `deliver` now, or in a later turn when this one has delivered PER_TURN already. */
export function paced(deliver: () => void): void {
  scheduleTurnEnd();
  if (deliveredThisTurn < PER_TURN && queued.length === 0) {
    deliveredThisTurn++;
    deliver();
  } else queued.push(deliver);
}

/**
 * Start `work` now, or in a later turn when this one has started or delivered PER_TURN already:
 * 10,000 requests for new clients arriving in one burst would otherwise start their lookups in
 * one poll phase, and the cached client whose request came in the same phase waits for all.
 */
export function pacedStart<T>(work: () => Promise<T>): Promise<T> {
  scheduleTurnEnd();
  if (deliveredThisTurn < PER_TURN && queued.length === 0) {
    deliveredThisTurn++;
    return work();
  }
  return new Promise<T>((resolve, reject) => queued.push(() => work().then(resolve, reject)));
}

/** Outcomes waiting for a later turn (tests). */
export function pacedBacklog(): number {
  return queued.length;
}
