/**
 * Warnings and errors aggregated per kind (their message) and minute: the first few of each are
 * written, the rest only counted, and one summary line gives the counts when the minute ends.
 * A peer that can make the daemon warn (20,000 broken connections a few seconds apart) would
 * otherwise write a warning each, and journald's per-unit rate limit would then drop the
 * decision lines with them — the audit trail `report` and `replay` read. Decision lines do not
 * pass through here (src/log/decision-line.ts writes them itself), so they are never held back.
 */
import { LIMITS } from '../config/limits.js';

export interface SuppressedKind {
  readonly msg: string;
  /** Lines of this kind written in the window. */
  readonly logged: number;
  /** Lines of this kind held back in the window. */
  readonly suppressed: number;
}

export interface WarningWindowOptions {
  perKind?: number;
  windowMs?: number;
  kindsTracked?: number;
  /** Milliseconds, monotonic enough for windows (tests pass their own). */
  now?: () => number;
}

/** The kind under which kinds past `kindsTracked` are counted together. */
export const OTHER_KIND = '(other kinds)';

interface Count {
  logged: number;
  suppressed: number;
}

export class WarningWindow {
  private counts = new Map<string, Count>();
  private windowEnd = Number.NEGATIVE_INFINITY;
  private held = 0;
  private timer: NodeJS.Timeout | undefined;
  private readonly perKind: number;
  private readonly windowMs: number;
  private readonly kindsTracked: number;
  private readonly now: () => number;

  /** `summarise` writes the summary line; it is called outside any admit() decision. */
  constructor(
    private readonly summarise: (kinds: SuppressedKind[], windowMs: number) => void,
    options: WarningWindowOptions = {},
  ) {
    this.perKind = options.perKind ?? LIMITS.warningsPerKindPerWindow;
    this.windowMs = options.windowMs ?? LIMITS.warningWindowMs;
    this.kindsTracked = options.kindsTracked ?? LIMITS.warningKindsTracked;
    this.now = options.now ?? Date.now;
  }

  /** True when a line of this kind may be written now; false when it is only counted. */
  admit(kind: string): boolean {
    const now = this.now();
    if (now >= this.windowEnd) {
      this.flush();
      this.windowEnd = now + this.windowMs;
    }
    let count = this.counts.get(kind);
    if (count === undefined) {
      // A bounded map: the kinds are the daemon's own messages, but nothing here relies on it.
      const key = this.counts.size < this.kindsTracked ? kind : OTHER_KIND;
      count = this.counts.get(key) ?? { logged: 0, suppressed: 0 };
      this.counts.set(key, count);
    }
    if (count.logged < this.perKind) {
      count.logged++;
      return true;
    }
    count.suppressed++;
    this.held++;
    this.armTimer(now);
    return false;
  }

  /** End the window now: write the summary if anything was held back (also at exit). */
  flush(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    const counts = this.counts;
    const held = this.held;
    this.counts = new Map();
    this.held = 0;
    this.windowEnd = Number.NEGATIVE_INFINITY;
    if (held === 0) return;
    const kinds: SuppressedKind[] = [];
    for (const [msg, count] of counts) if (count.suppressed > 0) kinds.push({ msg, ...count });
    this.summarise(kinds, this.windowMs);
  }

  /** The summary is due when the window ends, whether or not another warning comes. */
  private armTimer(now: number): void {
    if (this.timer) return;
    this.timer = setTimeout(() => this.flush(), Math.max(0, this.windowEnd - now));
    this.timer.unref();
  }
}

/** pino's numeric levels: warn and error are aggregated; fatal never is. */
const WARN_LEVEL = 40;
const FATAL_LEVEL = 60;
let unlimited = false;

/**
 * Write the lines `write` logs whatever the warning window says: an operator's own action (a
 * reload, its refusal, what it changed) must always be seen, and cannot flood.
 */
export function logAlways(write: () => void): void {
  unlimited = true;
  try {
    write();
  } finally {
    unlimited = false;
  }
}

/** Whether a log call (pino's level and arguments) is written: its kind is its message. */
export function admitLine(window: WarningWindow, level: number, args: readonly unknown[]): boolean {
  if (level < WARN_LEVEL || level >= FATAL_LEVEL || unlimited) return true;
  const message = typeof args[0] === 'string' ? args[0] : args[1];
  return window.admit(typeof message === 'string' ? message.slice(0, LIMITS.maxLogFieldChars) : '(no message)');
}
