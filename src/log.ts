/**
 * The logger: pino JSON lines on stdout. The only importer of pino. No transports (they need
 * worker threads and files next to the bundle); child loggers carry per-connection fields.
 */
import pino from 'pino';
import type { LogLevel } from './config.js';

type SonicBoom = ReturnType<typeof pino.destination>;

export type Logger = pino.Logger;

const destinations = new WeakMap<Logger, { flushSync(): void }>();

const OPTIONS = (level: LogLevel): pino.LoggerOptions => ({
  level,
  base: { name: 'fcrdns-policyd' },
  timestamp: isoTimestamp(),
  // Level names, not numbers: an admin greps for "warn".
  formatters: { level: (label) => ({ level: label }) },
});

/**
 * pino's isoTime output (`,"time":"2026-11-23T03:14:36.123Z"`), with the date and time of day
 * formatted once per second rather than once per line: Date#toISOString was a sixth of the
 * cost of logging a decision.
 */
function isoTimestamp(): () => string {
  let second = Number.NaN;
  let prefix = '';
  return () => {
    const now = Date.now();
    const ms = now % 1000;
    if (now - ms !== second) {
      second = now - ms;
      prefix = `,"time":"${new Date(second).toISOString().slice(0, 20)}`;
    }
    return `${prefix}${ms < 10 ? '00' : ms < 100 ? '0' : ''}${ms}Z"`;
  };
}

/** Characters of log lines gathered before they go to the file descriptor as one write. */
const LOG_BATCH_CHARS = 8 * 1024;
/** A quiet server's lines still appear within this time. */
const LOG_FLUSH_MS = 250;

/**
 * Gathers pino's lines and hands them to sonic-boom in 8 KiB batches: one write(2) per decision
 * was a sixth of the daemon's time under load, and sonic-boom's own minLength buffering
 * re-measures its whole pending buffer (Buffer.byteLength) on every line, which cost more than
 * the line itself. sonic-boom still does the writing: partial writes, EAGAIN, errors.
 */
class LineBatcher {
  private lines: string[] = [];
  private chars = 0;

  constructor(private readonly destination: SonicBoom) {}

  write(line: string): void {
    this.lines.push(line);
    this.chars += line.length;
    if (this.chars >= LOG_BATCH_CHARS) this.flush();
  }

  flush(): void {
    if (this.lines.length === 0) return;
    const batch = this.lines.join('');
    this.lines = [];
    this.chars = 0;
    try {
      this.destination.write(batch);
    } catch {
      // A destroyed destination (stdout gone): its error handler has said so once already.
    }
  }

  flushSync(): void {
    this.flush();
    this.destination.flushSync();
  }
}

/**
 * A logger writing JSON lines to a file descriptor (stdout by default), in batches flushed at
 * least every 250 ms.
 */
export function createLogger(level: LogLevel, fd = 1): Logger {
  const destination = pino.destination({ dest: fd, sync: false });
  // A closed or broken stdout (EPIPE when the log reader goes away) must not take the policy
  // service down with it: Postfix would answer 451 for every message. Say so once on stderr.
  let reported = false;
  destination.on('error', (error: NodeJS.ErrnoException) => {
    if (reported) return;
    reported = true;
    try {
      process.stderr.write(`fcrdns-policyd: cannot write logs (${error.code ?? error.message}); still answering requests\n`);
    } catch {
      // stderr is gone too: nothing left to tell.
    }
  });
  const batcher = new LineBatcher(destination);
  const logger = pino(OPTIONS(level), batcher);
  destinations.set(logger, batcher);
  const timer = setInterval(() => batcher.flush(), LOG_FLUSH_MS);
  timer.unref();
  return logger;
}

/** A logger writing JSON lines to a stream (tests read the decision lines back). */
export function createStreamLogger(level: LogLevel, stream: { write(line: string): void }): Logger {
  return pino(OPTIONS(level), stream);
}

/** A logger that discards everything (tests and the `check` command's internals). */
export function silentLogger(): Logger {
  return pino({ level: 'silent' });
}

/** Write out what is buffered before the process exits. */
export function flushLogger(logger: Logger): void {
  try {
    destinations.get(logger)?.flushSync();
  } catch {
    // A closed stdout cannot be flushed; nothing more can be said about it.
  }
}

/** At most this many addresses per forward answer go into a log line (an A set can hold hundreds). */
const MAX_LOGGED_ADDRESSES = 16;

/** What a decision line says about the request itself (peer strings, length-bounded). */
export interface RequestFields {
  clientAddress: string;
  heloName: string;
  instance: string;
  queueId: string;
  protocolState: string;
}

interface OutcomeParts {
  result: string;
  temperrorStage?: 'ptr' | 'forward' | undefined;
  reason?: string;
  ptr?: { outcome: string; code?: string | undefined; names: readonly string[]; ignored: readonly { name: string; reason: string }[] };
  forward?: readonly { name: string; outcome: string; code?: string | undefined; addresses: readonly string[]; matched: boolean }[];
  action: string;
  reply: string;
  /** Further fields with keys fixed by the caller's code (never taken from a peer). */
  extra?: Record<string, unknown>;
}

/** The part of a decision line that follows from the client's judgement, not from the request. */
export type OutcomeFields = Readonly<Record<string, unknown>>;

/**
 * The outcome fields of a decision line (SPEC "Logs"): the result, the PTR names and forward
 * answers examined, the action and reply. Built once per judgement, so a client judged again
 * from the same answers reuses them. Every key is fixed here, never taken from a peer.
 */
export function outcomeFields(parts: OutcomeParts): OutcomeFields {
  return {
    result: parts.result,
    ...(parts.temperrorStage ? { temperror_stage: parts.temperrorStage } : {}),
    ...(parts.reason ? { reason: parts.reason } : {}),
    ...(parts.ptr
      ? {
          ptr: {
            outcome: parts.ptr.outcome,
            ...(parts.ptr.code ? { code: parts.ptr.code } : {}),
            names: parts.ptr.names,
            ...(parts.ptr.ignored.length > 0
              ? { ignored: parts.ptr.ignored.map((item) => ({ name: item.name.slice(0, 256), reason: item.reason })) }
              : {}),
          },
        }
      : {}),
    ...(parts.forward
      ? {
          forward: parts.forward.map((check) => ({
            name: check.name,
            outcome: check.outcome,
            ...(check.code ? { code: check.code } : {}),
            addresses: check.addresses.slice(0, MAX_LOGGED_ADDRESSES),
            ...(check.addresses.length > MAX_LOGGED_ADDRESSES
              ? { addresses_omitted: check.addresses.length - MAX_LOGGED_ADDRESSES }
              : {}),
            matched: check.matched,
          })),
        }
      : {}),
    ...(parts.extra ?? {}),
    action: parts.action,
    reply: parts.reply,
  };
}

/**
 * The fields of one decision line (SPEC "Logs"): the request's own fields, the outcome, whether
 * every answer came from the cache, and how long the decision took. Values from peers and DNS
 * are already length-bounded and pino JSON-escapes them.
 */
export function decisionFields(request: RequestFields, outcome: OutcomeFields, cached: boolean, durationMs: number): Record<string, unknown> {
  return {
    client_address: request.clientAddress,
    helo_name: request.heloName,
    instance: request.instance,
    queue_id: request.queueId,
    protocol_state: request.protocolState,
    ...outcome,
    cached,
    duration_ms: Math.round(durationMs * 1000) / 1000,
  };
}
