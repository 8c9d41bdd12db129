/**
 * Load shedding near the heap cap. The shipped unit caps V8's heap (--max-old-space-size) so RSS
 * stays in budget; a heap that still fills (a flood of new clients whose DNS is slow or huge)
 * would end in "Reached heap limit", resetting every connection and leaving Postfix on
 * default_action until systemd restarts the daemon — a crash an attacker can repeat at will.
 * Instead, while the heap is nearly full, new uncached clients are answered at once per
 * temperror_action (no DNS, nothing kept), and cached clients go on being judged as usual.
 */
import v8 from 'node:v8';

/** Shed above this share of the heap limit… */
const SHED_ABOVE = 0.85;
/** …until the heap falls below this share again (hysteresis: no flapping per request). */
const RESUME_BELOW = 0.7;
/** Heap statistics are read at most this often (a read is a few µs; new clients arrive faster). */
const SAMPLE_EVERY_MS = 50;

export interface HeapGuard {
  /** True while new uncached clients are to be shed. */
  shedding(): boolean;
  /** Requests shed so far. */
  readonly shed: number;
  /** Count one shed request. */
  count(): void;
}

export interface HeapReading {
  used: number;
  limit: number;
}

const v8Reading = (): HeapReading => {
  const stats = v8.getHeapStatistics();
  return { used: stats.used_heap_size, limit: stats.heap_size_limit };
};

/**
 * `changed` is told when shedding starts (with the reading) and when it ends (with how many
 * requests were shed meanwhile), so the log says both.
 */
export function createHeapGuard(
  changed: (shedding: boolean, reading: HeapReading, shedMeanwhile: number) => void,
  read: () => HeapReading = v8Reading,
  now: () => number = Date.now,
): HeapGuard {
  let active = false;
  let lastSample = Number.NEGATIVE_INFINITY;
  let shed = 0;
  let shedAtStart = 0;
  return {
    shedding() {
      const time = now();
      if (time - lastSample < SAMPLE_EVERY_MS) return active;
      lastSample = time;
      const reading = read();
      const share = reading.used / reading.limit;
      if (!active && share > SHED_ABOVE) {
        active = true;
        shedAtStart = shed;
        changed(true, reading, 0);
      } else if (active && share < RESUME_BELOW) {
        active = false;
        changed(false, reading, shed - shedAtStart);
      }
      return active;
    },
    get shed() {
      return shed;
    },
    count() {
      shed++;
    },
  };
}
