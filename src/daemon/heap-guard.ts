/**
 * Load shedding near the heap cap. The shipped unit caps V8's heap (--max-old-space-size) so RSS
 * stays in budget; a heap that still fills (a flood of new clients whose DNS is slow or huge)
 * would end in "Reached heap limit", resetting every connection and leaving Postfix on
 * default_action until systemd restarts the daemon — a crash an attacker can repeat at will.
 * Instead, while the heap is nearly full, new uncached clients are answered at once per
 * temperror_action (no DNS, nothing kept), and cached clients go on being judged as usual.
 */
import { constants, PerformanceObserver } from 'node:perf_hooks';
import v8 from 'node:v8';

/** Shed above this share of the heap limit, live after a full collection… */
const SHED_ABOVE = 0.75;
/** …until the heap falls below this share again (hysteresis: no flapping per request). */
const RESUME_BELOW = 0.6;
/** The reading is looked at most this often (new clients arrive faster). */
const SAMPLE_EVERY_MS = 50;

export interface HeapGuard {
  /** True while new uncached clients are to be shed. */
  shedding(): boolean;
  /** Requests shed so far. */
  readonly shed: number;
  /** Count one shed request. */
  count(): void;
  /** Stop watching collections (the daemon closed). */
  close(): void;
}

export interface HeapReading {
  used: number;
  limit: number;
}

/**
 * The heap that is live, not merely used: read right after each full (mark-sweep) collection.
 * used_heap_size at any other moment includes garbage not yet collected, and under a busy cold
 * load with a full cache it passes 85 % of the limit shortly before every major collection, which
 * would shed ordinary new clients. Until the first major collection nothing is live enough to
 * matter, so the reading starts at 0.
 */
function liveHeapReading(): () => HeapReading {
  const limit = v8.getHeapStatistics().heap_size_limit;
  let live = 0;
  const observer = new PerformanceObserver((list) => {
    for (const entry of list.getEntries()) {
      if (((entry as { detail?: { kind?: number } }).detail)?.kind === constants.NODE_PERFORMANCE_GC_MAJOR) {
        live = v8.getHeapStatistics().used_heap_size;
      }
    }
  });
  observer.observe({ entryTypes: ['gc'] });
  const read = () => ({ used: live, limit });
  read.stop = () => observer.disconnect();
  return read;
}

/**
 * `changed` is told when shedding starts (with the reading) and when it ends (with how many
 * requests were shed meanwhile), so the log says both.
 */
export function createHeapGuard(
  changed: (shedding: boolean, reading: HeapReading, shedMeanwhile: number) => void,
  read: (() => HeapReading) & { stop?: () => void } = liveHeapReading(),
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
    close() {
      read.stop?.();
    },
  };
}
