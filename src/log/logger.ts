/**
 * The logger: pino JSON lines on stdout (written by stdout.ts), warnings held back past their
 * window's allowance (warning-window.ts), the decision line (decision-line.ts). No transports
 * (they need worker threads and files next to the bundle); child loggers carry per-connection
 * fields.
 */
import pino from 'pino';
import type { LogLevel } from '../config/config.js';
import { LIMITS } from '../config/limits.js';
import { flatCopy } from '../util/text.js';
import { openStdout } from './stdout.js';
import { admitLine, logAlways, WarningWindow, type SuppressedKind, type WarningWindowOptions } from './warning-window.js';

export { logAlways };
export { logDecision, outcomeFields, type OutcomeFields, type RequestFields } from './decision-line.js';

export type Logger = pino.Logger;

const destinations = new WeakMap<Logger, { flushSync(): void; dropped(): number; warnings: WarningWindow }>();

/** Log lines this logger dropped because its stdout did not keep up (0 for other loggers). */
export function droppedLogLines(logger: Logger): number {
  return destinations.get(logger)?.dropped() ?? 0;
}

const OPTIONS = (level: LogLevel): pino.LoggerOptions => ({
  level,
  base: { name: 'fcrdns-policyd' },
  timestamp: isoTimestamp(),
  // Level names, not numbers: an admin greps for "warn".
  formatters: { level: (label) => ({ level: label }) },
});

/**
 * pino's isoTime output (`,"time":"2026-11-23T03:14:36.123Z"`), with the date and time of day
 * formatted once per second rather than once per line (Date#toISOString was a sixth of the cost
 * of logging a decision), and the same flat string given all through one millisecond: the
 * decision line encodes it once per string (decision-line.ts).
 */
function isoTimestamp(): () => string {
  let second = Number.NaN;
  let prefix = '';
  let last = Number.NaN;
  let text = '';
  return () => {
    const now = Date.now();
    if (now === last) return text;
    last = now;
    const ms = now % 1000;
    if (now - ms !== second) {
      second = now - ms;
      prefix = `,"time":"${new Date(second).toISOString().slice(0, 20)}`;
    }
    text = flatCopy(`${prefix}${ms < 10 ? '00' : ms < 100 ? '0' : ''}${ms}Z"`);
    return text;
  };
}

/**
 * A logger writing JSON lines to a file descriptor (stdout by default), in batches flushed at
 * least every 250 ms.
 */
export function createLogger(level: LogLevel, fd = 1): Logger {
  const stdout = openStdout(fd);
  let warnings: WarningWindow | undefined;
  const logger = pino({ ...OPTIONS(level), hooks: aggregatingHooks(() => warnings) }, stdout.stream);
  warnings = new WarningWindow((kinds, windowMs) => summariseWarnings(logger, kinds, windowMs));
  destinations.set(logger, { warnings, dropped: stdout.dropped, flushSync: stdout.flushSync });
  return logger;
}

/**
 * A logger writing JSON lines to a stream (tests read the decision lines back); with `aggregate`,
 * its warnings go through a warning window as the daemon's do.
 */
export function createStreamLogger(level: LogLevel, stream: { write(line: string): void }, aggregate?: WarningWindowOptions): Logger {
  if (aggregate === undefined) return pino(OPTIONS(level), stream);
  let warnings: WarningWindow | undefined;
  const logger = pino({ ...OPTIONS(level), hooks: aggregatingHooks(() => warnings) }, stream);
  warnings = new WarningWindow((kinds, windowMs) => summariseWarnings(logger, kinds, windowMs), aggregate);
  return logger;
}

/** A logger that discards everything (tests and the `check` command's internals). */
export function silentLogger(): Logger {
  return pino({ level: 'silent' });
}

/** pino's logMethod hook holding back warnings and errors past the window's allowance. */
function aggregatingHooks(window: () => WarningWindow | undefined): pino.LoggerOptions['hooks'] {
  return {
    logMethod(args, method, level) {
      const held = window();
      if (held !== undefined && !admitLine(held, level, args)) return;
      method.apply(this, args);
    },
  };
}

/** The line that ends a window in which warnings were held back. */
function summariseWarnings(logger: Logger, kinds: SuppressedKind[], windowMs: number): void {
  const suppressed = kinds.reduce((sum, kind) => sum + kind.suppressed, 0);
  logAlways(() =>
    logger.warn(
      { suppressed, kinds, window_s: windowMs / 1000, per_kind: LIMITS.warningsPerKindPerWindow },
      `warnings held back: the first ${LIMITS.warningsPerKindPerWindow} of each kind are logged per minute, the rest counted here`,
    ),
  );
}

/** Write out what is buffered before the process exits (with the count of warnings held back). */
export function flushLogger(logger: Logger): void {
  destinations.get(logger)?.warnings.flush();
  try {
    destinations.get(logger)?.flushSync();
  } catch {
    // A closed stdout cannot be flushed; nothing more can be said about it.
  }
}
