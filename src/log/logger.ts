/**
 * The logger: pino JSON lines on stdout. The only importer of pino. No transports (they need
 * worker threads and files next to the bundle); child loggers carry per-connection fields.
 */
import pino from 'pino';
import type { LogLevel } from '../config/config.js';
import { LIMITS } from '../config/limits.js';
import { flatCopy } from '../util/text.js';
import { admitLine, logAlways, WarningWindow, type SuppressedKind, type WarningWindowOptions } from './warning-window.js';

export { logAlways };

type SonicBoom = ReturnType<typeof pino.destination>;

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

/** Bytes of log lines gathered before they go to the file descriptor as one write. */
const LOG_BATCH_BYTES = 64 * 1024;
/** A quiet server's lines still appear within this time. */
const LOG_FLUSH_MS = 250;
/**
 * Log bytes waiting for a stdout nobody reads (a stalled journald, a full pipe) before new
 * lines are dropped: answers to Postfix matter more than log lines, and memory must stay bounded.
 */
const LOG_BACKLOG_BYTES = 4 * 1024 * 1024;
/** The most one write(2) of log lines carries (queued batches are joined up to this). */
const LOG_WRITE_BYTES = 1024 * 1024;
/** At most one stderr warning about dropped log lines this often. */
const LOG_DROP_WARNING_MS = 60_000;
/** How long the last flush at exit may wait for a blocked stdout. */
const LOG_EXIT_FLUSH_MS = 2_000;

/**
 * Gathers pino's lines as UTF-8 in a 64 KiB buffer and hands each full buffer to sonic-boom,
 * which still does the writing (partial writes, EAGAIN, errors). One write(2) per decision was a
 * sixth of the daemon's time under load; sonic-boom's own minLength buffering re-measures its
 * whole pending string on every line; and lines kept as strings until a batch is joined lived
 * long enough to be copied by every young-generation GC. Encoding each line at once leaves it
 * garbage as soon as it is written.
 */
class LineBatcher {
  private batch = Buffer.allocUnsafe(LOG_BATCH_BYTES);
  private used = 0;

  constructor(private readonly destination: SonicBoom) {}

  write(line: string): void {
    // A UTF-16 code unit takes at most three bytes in UTF-8: make room for the worst case.
    if (this.used + line.length * 3 > this.batch.length) {
      this.flush();
      if (line.length * 3 > this.batch.length) {
        this.send(Buffer.from(line, 'utf8'));
        return;
      }
    }
    this.used += this.batch.write(line, this.used, 'utf8');
  }

  flush(): void {
    if (this.used === 0) return;
    const full = this.batch.subarray(0, this.used);
    this.batch = Buffer.allocUnsafe(LOG_BATCH_BYTES);
    this.used = 0;
    this.send(full);
  }

  flushSync(): void {
    this.flush();
    this.destination.flushSync();
  }

  private send(bytes: Buffer): void {
    try {
      (this.destination as unknown as { write(data: Buffer): boolean }).write(bytes);
    } catch {
      // A destroyed destination (stdout gone): its error handler has said so once already.
    }
  }
}

const exitHooks: Array<() => void> = [];

/**
 * Run `hook` when the process exits, before pino's own exit flush: an exit that did not go
 * through flushLogger() still gets a bounded last flush. One process listener for every logger.
 */
function onExitBeforePino(hook: () => void): void {
  if (exitHooks.length === 0) process.prependListener('exit', () => exitHooks.forEach((run) => run()));
  exitHooks.push(hook);
}

/**
 * A logger writing JSON lines to a file descriptor (stdout by default), in batches flushed at
 * least every 250 ms.
 */
export function createLogger(level: LogLevel, fd = 1): Logger {
  let exitDeadline = Number.POSITIVE_INFINITY;
  const destination = pino.destination({
    dest: fd,
    sync: false,
    contentMode: 'buffer',
    maxLength: LOG_BACKLOG_BYTES,
    // Batches that queue up while a write is in flight go out together in the next write, up
    // to 1 MiB (sonic-boom's default, 16 KiB, would write one 64 KiB batch per event-loop turn
    // and fall behind a busy loop).
    maxWrite: LOG_WRITE_BYTES,
    // sonic-boom retries a full stdout forever; at exit, give up after LOG_EXIT_FLUSH_MS.
    retryEAGAIN: () => Date.now() < exitDeadline,
  });
  // A closed or broken stdout (EPIPE when the log reader goes away) must not take the policy
  // service down with it: Postfix would answer 451 for every message. Say so once on stderr.
  let reported = false;
  const report = (what: string): void => {
    if (reported) return;
    reported = true;
    try {
      process.stderr.write(`fcrdns-policyd: ${what}; still answering requests\n`);
    } catch {
      // stderr is gone too: nothing left to tell.
    }
  };
  destination.on('error', (error: NodeJS.ErrnoException) => report(`cannot write logs (${error.code ?? error.message})`));
  // Lines dropped are counted (fcrdns_log_lines_dropped_total) and said on stderr, at most once
  // a minute with the running count: stderr goes to the journal apart from stdout's backlog.
  const drops = { lines: 0, lastWarning: Number.NEGATIVE_INFINITY };
  destination.on('drop', (data: Buffer | string) => {
    let lines = 0;
    for (let at = data.indexOf('\n'); at !== -1; at = data.indexOf('\n', at + 1)) lines++;
    drops.lines += Math.max(1, lines);
    const now = Date.now();
    if (now - drops.lastWarning < LOG_DROP_WARNING_MS) return;
    drops.lastWarning = now;
    try {
      process.stderr.write(
        `fcrdns-policyd: stdout is not being read: over ${LOG_BACKLOG_BYTES / 1024 / 1024} MiB of log lines waiting; ` +
          `${drops.lines} lines dropped so far; still answering requests\n`,
      );
    } catch {
      // stderr is gone too: the metric still counts.
    }
  });
  const batcher = new LineBatcher(destination);
  let warnings: WarningWindow | undefined;
  const logger = pino({ ...OPTIONS(level), hooks: aggregatingHooks(() => warnings) }, batcher);
  warnings = new WarningWindow((kinds, windowMs) => summariseWarnings(logger, kinds, windowMs));
  const startExitFlush = (): void => {
    if (exitDeadline === Number.POSITIVE_INFINITY) exitDeadline = Date.now() + LOG_EXIT_FLUSH_MS;
  };
  destinations.set(logger, {
    warnings,
    dropped: () => drops.lines,
    flushSync: () => {
      startExitFlush();
      try {
        batcher.flushSync();
      } catch (error) {
        // stdout stayed blocked: give up on it, so sonic-boom's own flush at process exit
        // (pino registers one) does not wait or throw again.
        destination.destroy();
        throw error;
      }
    },
  });
  onExitBeforePino(startExitFlush);
  const timer = setInterval(() => batcher.flush(), LOG_FLUSH_MS);
  timer.unref();
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

/** At most this many addresses per forward answer go into a log line (an A set can hold hundreds). */
const MAX_LOGGED_ADDRESSES = 16;

/** What a decision line says about the request itself (peer strings, length-bounded). */
export interface RequestFields {
  clientAddress: string;
  heloName: string;
  instance: string;
  queueId: string;
  protocolState: string;
  /** Logged: pass_recipients decides on it, and replay must see it. */
  recipient: string;
  /** Only whether it is set is logged (`authenticated`): that is all skip_authenticated reads. */
  saslUsername: string;
}

interface OutcomeParts {
  result: string;
  temperrorStage?: 'ptr' | 'forward' | undefined;
  reason?: string;
  ptr?: {
    outcome: string;
    code?: string | undefined;
    names: readonly string[];
    ignored: readonly { name: string; reason: string }[];
    ignoredCounts?: Readonly<Record<string, number | undefined>> | undefined;
  };
  forward?: readonly {
    name: string;
    outcome: string;
    code?: string | undefined;
    addresses: readonly string[];
    omitted?: number | undefined;
    matched: boolean;
  }[];
  action: string;
  reply: string;
  /** Further fields with keys fixed by the caller's code (never taken from a peer). */
  extra?: Record<string, unknown>;
}

/**
 * The part of a decision line that follows from the client's judgement, not from the request,
 * serialised once: JSON members without the braces.
 */
export interface OutcomeFields {
  readonly json: string;
}

/**
 * The outcome fields of a decision line (SPEC "Logs"): the result, the PTR names and forward
 * answers examined, the action and reply. Built and serialised once per judgement, so a client
 * judged again from the same answers reuses them. Every key is fixed here, never taken from a
 * peer; values from peers and DNS are length-bounded and JSON-escaped.
 */
export function outcomeFields(parts: OutcomeParts): OutcomeFields {
  const fields = {
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
              ? { ignored: parts.ptr.ignored.map((item) => ({ name: item.name.slice(0, LIMITS.maxLogFieldChars), reason: item.reason })) }
              : {}),
            // Every unusable name by reason: the examples above are at most a few.
            ...(parts.ptr.ignoredCounts ? { ignored_counts: parts.ptr.ignoredCounts } : {}),
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
            ...(check.addresses.length > MAX_LOGGED_ADDRESSES || check.omitted
              ? { addresses_omitted: Math.max(0, check.addresses.length - MAX_LOGGED_ADDRESSES) + (check.omitted ?? 0) }
              : {}),
            matched: check.matched,
          })),
        }
      : {}),
    ...(parts.extra ?? {}),
    action: parts.action,
    reply: parts.reply,
  };
  // A flat string: kept per judgement and copied into a line per request (a slice of the
  // serialisation would be two objects to fetch each time).
  return { json: flatCopy(withinOutcomeCap(fields)) };
}

type Serialisable = Record<string, unknown> & {
  ptr?: { names: readonly string[]; ignored?: readonly unknown[]; names_omitted?: number };
  forward?: readonly { matched: boolean }[];
  forward_omitted?: number;
  forward_confirmed_omitted?: number;
};

/**
 * The outcome's JSON members, cut to LIMITS.maxOutcomeJsonBytes: one hostile client's answer
 * (fifty 253-character names, each with sixteen addresses) must not crowd other clients' lines
 * out of the log. Unmatched forward checks go first, then the ignored examples, then PTR names
 * past the first, and last the confirmed forward checks past the first (fifty long names that
 * all confirm: the one kept proves the pass); what is cut is counted in `forward_omitted` /
 * `names_omitted` / `forward_confirmed_omitted`, and `ignored_counts` still counts every unusable
 * name. Replay does not replay a line whose confirmed names were cut (it cannot know them).
 * Only such answers pay for the loop.
 */
function withinOutcomeCap(fields: Serialisable): string {
  const tooLong = (text: string): boolean =>
    text.length * 3 > LIMITS.maxOutcomeJsonBytes && Buffer.byteLength(text) > LIMITS.maxOutcomeJsonBytes;
  let json = JSON.stringify(fields);
  if (!tooLong(json)) return json.slice(1, -1);
  const cut: Serialisable = { ...fields };
  const forward = [...(cut.forward ?? [])];
  const ptr = cut.ptr ? { ...cut.ptr, names: [...cut.ptr.names] } : undefined;
  let forwardOmitted = 0;
  let confirmedOmitted = 0;
  let namesOmitted = 0;
  while (tooLong(json)) {
    let unmatched = forward.length - 1;
    while (unmatched >= 0 && forward[unmatched]?.matched) unmatched--;
    if (unmatched >= 0 && forward.length > 1) {
      forward.splice(unmatched, 1);
      forwardOmitted++;
    } else if (ptr?.ignored !== undefined) {
      delete ptr.ignored;
    } else if (ptr !== undefined && ptr.names.length > 1) {
      ptr.names.pop();
      namesOmitted++;
    } else if (forward.length > 1) {
      // Only confirmed checks are left (the unmatched went first).
      forward.pop();
      confirmedOmitted++;
    } else break;
    if (ptr) cut.ptr = namesOmitted > 0 ? { ...ptr, names_omitted: namesOmitted } : ptr;
    if (cut.forward) {
      cut.forward = forward;
      if (forwardOmitted > 0) cut.forward_omitted = forwardOmitted;
      if (confirmedOmitted > 0) cut.forward_confirmed_omitted = confirmedOmitted;
    }
    json = JSON.stringify(cut);
  }
  return json.slice(1, -1);
}

const roundMs = (ms: number): number => Math.round(ms * 1000) / 1000;

/** The parts of a pino logger that pino.symbols exposes for integrations (pino's API docs). */
interface PinoInternals {
  [pino.symbols.lsCacheSym]: Record<number, string>;
  [pino.symbols.timeSym]: () => string;
  [pino.symbols.chindingsSym]: string;
  [pino.symbols.endSym]: string;
  [pino.symbols.streamSym]: { write(line: string): void };
}

/**
 * Log one decision at info (SPEC "Logs"): the request's own fields, the outcome, whether every
 * answer came from the cache, and how long the decision took. It is the line
 * `logger.info({ …fields }, 'decision')` would write (test/log.test.ts holds them equal),
 * assembled from pino's own level, time, bindings and stream with the outcome already serialised.
 * pino's generic per-key serialisation of the fifteen fields was the largest part of a cached
 * request's cost; here the only work per request is escaping the five request strings.
 */
export function logDecision(logger: Logger, request: RequestFields, outcome: OutcomeFields, cached: boolean, durationMs: number): void {
  const line = decisionLineParts(logger);
  if (!line.enabled()) return;
  // One flat string from the pieces (a template literal would make a chain of two dozen
  // concatenations, which the write then copies into one string again), joined from one array
  // kept for the purpose: a new one per line was ~230 of the ~4,400 bytes a cached request
  // allocates (young-generation collections per 10,000 requests in bench:handler 10.9 → 10.2).
  const pieces = LINE_PIECES;
  pieces[0] = line.start;
  pieces[1] = line.time();
  pieces[2] = line.bindings;
  pieces[4] = JSON.stringify(request.clientAddress);
  pieces[6] = JSON.stringify(request.heloName);
  pieces[8] = JSON.stringify(request.instance);
  pieces[10] = JSON.stringify(request.queueId);
  pieces[12] = JSON.stringify(request.protocolState);
  pieces[14] = JSON.stringify(request.recipient);
  pieces[15] = request.saslUsername === '' ? AUTHENTICATED_NO : AUTHENTICATED_YES;
  pieces[16] = outcome.json;
  pieces[17] = cached ? ',"cached":true,"duration_ms":' : ',"cached":false,"duration_ms":';
  pieces[18] = String(roundMs(durationMs));
  pieces[20] = line.end;
  let text = pieces.join('');
  // Request strings are cut to 256 characters each, but a peer's control bytes escape to six
  // characters apiece: such a line is written again with the request fields cut shorter, so no
  // decision line passes LIMITS.maxDecisionLineBytes (checked on bytes only when it could).
  if (text.length * 3 > LIMITS.maxDecisionLineBytes && Buffer.byteLength(text) > LIMITS.maxDecisionLineBytes) {
    const short = (value: string): string => JSON.stringify(value.slice(0, LIMITS.maxCutRequestFieldChars));
    pieces[4] = short(request.clientAddress);
    pieces[6] = short(request.heloName);
    pieces[8] = short(request.instance);
    pieces[10] = short(request.queueId);
    pieces[12] = short(request.protocolState);
    pieces[14] = short(request.recipient);
    pieces[15] = `${pieces[15]?.slice(0, -1)},"request_fields_cut":true,`;
    text = pieces.join('');
  }
  // Let go of this request's strings before the next young-generation collection.
  pieces[4] = pieces[6] = pieces[8] = pieces[10] = pieces[12] = pieces[14] = pieces[16] = pieces[18] = '';
  line.stream.write(text);
}

/** The decision line's pieces: slots 3, 5, 7, 9, 11, 13 and 19 are fixed, the others set per line. */
const LINE_PIECES: string[] = [
  '', '', '', ',"client_address":', '', ',"helo_name":', '', ',"instance":', '', ',"queue_id":', '',
  ',"protocol_state":', '', ',"recipient":', '', '', '', '', '', ',"msg":"decision"', '',
];
const AUTHENTICATED_NO = ',"authenticated":false,';
const AUTHENTICATED_YES = ',"authenticated":true,';

interface DecisionLineParts {
  enabled: () => boolean;
  /** `{"level":"info"` as pino writes it. */
  start: string;
  time: () => string;
  /** The logger's bindings (`,"name":…,"conn":…`), fixed when it was made. */
  bindings: string;
  end: string;
  stream: { write(line: string): void };
}

/**
 * A logger's pino parts, read once per logger: pino's loggers carry dozens of symbol-keyed
 * properties, and reading them on every decision went through V8's slow property lookup.
 */
const lineParts = new WeakMap<Logger, DecisionLineParts>();

function decisionLineParts(logger: Logger): DecisionLineParts {
  let parts = lineParts.get(logger);
  if (parts === undefined) {
    const internals = logger as unknown as PinoInternals;
    const level = logger.levels.values.info ?? 30;
    parts = {
      enabled: () => logger.isLevelEnabled('info'),
      start: internals[pino.symbols.lsCacheSym][level] ?? '{"level":"info"',
      time: internals[pino.symbols.timeSym],
      bindings: internals[pino.symbols.chindingsSym],
      end: internals[pino.symbols.endSym],
      stream: internals[pino.symbols.streamSym],
    };
    lineParts.set(logger, parts);
  }
  return parts;
}
