/**
 * One line of the daemon's JSON log, read back for `report` and `replay`: a decision, a reused
 * decision (a later recipient of a message), another message of ours (started, reloaded, a
 * warning), or bad input of one kind or another. Every field of a decision line is checked for
 * its type here, so the rest of the code reads typed records and nothing a peer put into a
 * log line (the HELO name, the recipient) is trusted for more than a string. Only the fields
 * report and replay read are kept, each cut to the daemon's own caps (src/config/limits.ts), so what a
 * line leaves behind is bounded whatever its size: memory grows with distinct keys, not bytes.
 */
import { LIMITS } from '../config/limits.js';
import type { HeloStatus } from '../judge/policy.js';
import { detachedCopy } from '../util/text.js';

export type LoggedAction = 'dunno' | 'warn' | 'throttle' | 'defer' | 'reject';

/**
 * Whether a logged answer was a throttled class whose network's budget was spent: the action is
 * `throttle` either way, and the reply (450 rather than DUNNO) tells them apart.
 */
export function wasThrottled(action: LoggedAction, reply: string): boolean {
  return action === 'throttle' && reply.startsWith('450 ');
}

/** What every request-level line (a decision or a reused one) carries. */
interface RequestLine {
  /** Epoch milliseconds of the line's `time`. */
  readonly time: number;
  readonly timeText: string;
  readonly clientAddress: string;
  readonly instance: string;
  /** Absent on lines of versions before 0.2 (not replayable: pass_recipients needs it). */
  readonly recipient?: string;
  readonly authenticated?: boolean;
  readonly action: LoggedAction;
  readonly reply: string;
}

export interface DecisionRecord extends RequestLine {
  readonly kind: 'decision';
  readonly heloName: string;
  /** An iprev class, `generic`, or `skipped`. */
  readonly result: string;
  /** Why a `skipped` request was exempt (pass_recipient, authenticated, skip_network). */
  readonly reason?: string;
  readonly temperrorStage?: 'ptr' | 'forward';
  /** Of the PTR answer: its outcome and code, and the first name (report's registered domains). */
  readonly ptr?: { readonly outcome: string; readonly code?: string; readonly firstName?: string };
  /** Names whose forward answer matched the client (iprev's confirmed names): what replay judges. */
  readonly confirmedNames: readonly string[];
  /** The distinct codes of forward lookups that failed temporarily (report's resolver causes). */
  readonly forwardTemporaryCodes: readonly string[];
  readonly helo?: HeloStatus;
  readonly cached: boolean;
  readonly durationMs: number;
  readonly requestFieldsCut: boolean;
  /** Confirmed forward checks past the first were cut to keep the line under 4 KiB (src/log/decision-line.ts). */
  readonly confirmedNamesCut: boolean;
}

export interface ReuseRecord extends RequestLine {
  readonly kind: 'reuse';
}

/** What a log line is; the bad kinds are counted and shown, never fatal. */
export type LogLine =
  | DecisionRecord
  | ReuseRecord
  /** Ours, but not a request: started, reloaded, stopping, a warning… (`config` when it says). */
  | { readonly kind: 'other'; readonly msg: string; readonly time: number; readonly config?: Readonly<Record<string, string>> }
  | { readonly kind: 'bad'; readonly why: BadLine };

export type BadLine =
  /** Not JSON at all. */
  | 'not_json'
  /** The input's last line, cut off without a newline (a log being written, a rotated file). */
  | 'truncated'
  /** JSON, but not a line of this program. */
  | 'foreign'
  /** A syslog / journal line whose tag is not the daemon's (`logger` and every other program). */
  | 'foreign_tag'
  /** A decision line with a field missing or of the wrong type. */
  | 'wrong_type'
  /** A request line whose `time` is not as the daemon writes it, or before 2000 or over a day ahead. */
  | 'bad_time'
  /** A decision line whose `duration_ms` is negative, infinite (`1e400`) or over an hour. */
  | 'bad_duration'
  /** Longer than any line the daemon writes (a decision line is at most 4 KiB). */
  | 'too_long';

export const BAD_LINE_TEXT: Record<BadLine, string> = {
  not_json: 'not JSON',
  truncated: 'truncated last line',
  foreign: 'JSON from another program',
  foreign_tag: "syslog / journal lines of another program (not the daemon's tag, see --tag)",
  wrong_type: 'decision lines with a missing field or a field of the wrong type',
  bad_time: 'lines with a time not as the daemon writes it, or out of range (before 2000, or over a day ahead)',
  bad_duration: 'decision lines with a duration that is negative, infinite or over an hour',
  too_long: 'lines longer than 64 KiB',
};

/** How lines are read: whose syslog tag is ours, and the clock that bounds `time`. */
export interface ParseOptions {
  /** The syslog identifier of the daemon's lines (`fcrdns-policyd`; the `--tag` option). */
  readonly tag?: string;
  /** Epoch ms of "now" for the time range (tests pin it). */
  readonly now?: number;
}

export const DEFAULT_TAG = 'fcrdns-policyd';

const ACTIONS: readonly string[] = ['dunno', 'warn', 'throttle', 'defer', 'reject'];
const HELO: readonly string[] = ['confirmed', 'resolves', 'literal', 'mismatch', 'literal_mismatch', 'invalid', 'missing', 'temperror', 'unchecked'];
const OUTCOMES: readonly string[] = ['answer', 'not_found', 'temporary'];
const RESULTS: readonly string[] = ['pass', 'no_ptr', 'no_forward', 'mismatch', 'temperror', 'generic', 'skipped'];
/** pino's time as src/log/logger.ts writes it: ISO 8601, UTC, milliseconds. */
const DAEMON_TIME = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/;

type Json = Record<string, unknown>;
const isObject = (value: unknown): value is Json => typeof value === 'object' && value !== null && !Array.isArray(value);

/** Thrown inside the readers below when a field is wrong; caught in parseLogLine. */
class BadField extends Error {
  constructor(readonly why: BadLine = 'wrong_type') {
    super(why);
  }
}
const fail = (why?: BadLine): never => {
  throw new BadField(why);
};

/**
 * A string kept past its line, cut to `max` characters as the daemon cuts what it logs. A cut
 * is copied (detachedCopy), so it does not pin the whole parsed value behind it.
 */
const kept = (value: string, max: number): string => (value.length <= max ? value : detachedCopy(value.slice(0, max)));
const str = (line: Json, key: string, max: number = LIMITS.maxLogFieldChars): string => (typeof line[key] === 'string' ? kept(line[key] as string, max) : fail());
const optionalStr = (line: Json, key: string, max: number = LIMITS.maxLogFieldChars): string | undefined =>
  line[key] === undefined ? undefined : str(line, key, max);
const optionalBool = (line: Json, key: string): boolean | undefined =>
  line[key] === undefined ? undefined : typeof line[key] === 'boolean' ? (line[key] as boolean) : fail();

/** Epoch ms of a `time` written as the daemon writes it, within the sane range; else bad_time. */
function daemonTime(text: string, now: number): number {
  const time = DAEMON_TIME.test(text) ? Date.parse(text) : Number.NaN;
  if (!(time >= LIMITS.logTimeEarliestMs && time <= now + LIMITS.logTimeAheadMs)) fail('bad_time');
  return time;
}

function requestLine(line: Json, now: number): RequestLine {
  const timeText = str(line, 'time', 32);
  const time = daemonTime(timeText, now);
  const action = str(line, 'action');
  if (!ACTIONS.includes(action)) fail();
  const recipient = optionalStr(line, 'recipient');
  const authenticated = optionalBool(line, 'authenticated');
  return {
    time,
    timeText,
    clientAddress: str(line, 'client_address'),
    instance: str(line, 'instance'),
    ...(recipient !== undefined ? { recipient } : {}),
    ...(authenticated !== undefined ? { authenticated } : {}),
    action: action as LoggedAction,
    // Not kept past the line (replay --json prints it): the daemon's reply, up to a line's size.
    reply: str(line, 'reply', LIMITS.maxDecisionLineBytes),
  };
}

/**
 * Of the forward checks, what report and replay read: the confirmed names (at most
 * max_ptr_names' ceiling) and the distinct codes of temporary failures. Every check is typed.
 */
function forwardSummary(value: unknown): { confirmedNames: string[]; forwardTemporaryCodes: string[] } {
  const confirmedNames: string[] = [];
  const forwardTemporaryCodes: string[] = [];
  if (value === undefined) return { confirmedNames, forwardTemporaryCodes };
  if (!Array.isArray(value)) return fail();
  for (const check of value as unknown[]) {
    if (!isObject(check)) return fail();
    const outcome = str(check, 'outcome');
    if (!OUTCOMES.includes(outcome) || !Array.isArray(check.addresses) || typeof check.matched !== 'boolean') fail();
    if (!(check.addresses as unknown[]).every((item) => typeof item === 'string')) fail();
    const name = str(check, 'name');
    const code = optionalStr(check, 'code', LIMITS.maxLogCodeChars);
    if (check.matched && confirmedNames.length < LIMITS.maxPtrNamesCeiling) confirmedNames.push(name);
    const cause = code ?? 'unknown';
    if (outcome === 'temporary' && !forwardTemporaryCodes.includes(cause) && forwardTemporaryCodes.length < LIMITS.maxPtrNamesCeiling) forwardTemporaryCodes.push(cause);
  }
  return { confirmedNames, forwardTemporaryCodes };
}

function ptrSummary(value: unknown): DecisionRecord['ptr'] {
  if (value === undefined) return undefined;
  if (!isObject(value) || !Array.isArray(value.names) || !(value.names as unknown[]).every((name) => typeof name === 'string')) return fail();
  const code = optionalStr(value, 'code', LIMITS.maxLogCodeChars);
  const first = (value.names as string[])[0];
  return {
    outcome: str(value, 'outcome', LIMITS.maxLogCodeChars),
    ...(code !== undefined ? { code } : {}),
    ...(first !== undefined ? { firstName: kept(first, LIMITS.maxLogFieldChars) } : {}),
  };
}

/** A duration as the daemon measures it: finite, not negative, under an hour; else bad_duration. */
function durationOf(value: unknown): number {
  if (typeof value !== 'number') return fail();
  if (!(value >= 0 && value <= LIMITS.logDurationMaxMs)) fail('bad_duration');
  return value;
}

function decisionRecord(line: Json, now: number): DecisionRecord {
  const request = requestLine(line, now);
  const result = str(line, 'result');
  if (!RESULTS.includes(result)) fail();
  const stage = optionalStr(line, 'temperror_stage');
  if (stage !== undefined && stage !== 'ptr' && stage !== 'forward') fail();
  const ptr = ptrSummary(line.ptr);
  const helo = optionalStr(line, 'helo');
  if (helo !== undefined && !HELO.includes(helo)) fail();
  if (line.generic !== undefined && !isObject(line.generic)) fail();
  if (typeof line.cached !== 'boolean') fail();
  const durationMs = durationOf(line.duration_ms);
  const reason = optionalStr(line, 'reason', LIMITS.maxLogCodeChars);
  return {
    kind: 'decision',
    ...request,
    heloName: str(line, 'helo_name'),
    result,
    ...(reason !== undefined ? { reason } : {}),
    ...(stage !== undefined ? { temperrorStage: stage as 'ptr' | 'forward' } : {}),
    ...(ptr ? { ptr } : {}),
    ...forwardSummary(line.forward),
    ...(helo !== undefined ? { helo: helo as HeloStatus } : {}),
    cached: line.cached as boolean,
    durationMs,
    requestFieldsCut: line.request_fields_cut === true,
    confirmedNamesCut: typeof line.forward_confirmed_omitted === 'number' && line.forward_confirmed_omitted > 0,
  };
}

function isJson(text: string): boolean {
  try {
    JSON.parse(text);
    return true;
  } catch {
    return false;
  }
}

/** Lines longer than this are not the daemon's (a decision line is at most 4 KiB). */
export const MAX_LOG_LINE_BYTES = 64 * 1024;

/**
 * The tag of a syslog or `journalctl -o short` prefix (`Dec  6 04:00:00 mx fcrdns-policyd[42]: `),
 * or undefined when the text before the JSON is no such prefix.
 */
function syslogTag(prefix: string): string | undefined {
  return /(?:^|\s)([^\s[\]:]+)(?:\[\d+\])?: ?$/.exec(prefix)?.[1];
}

/**
 * Classify one line. `complete` is false for an input's last line when no newline ended it. A
 * syslog or journal prefix before the JSON is skipped only when its tag is the daemon's: lines
 * of other programs (a local user's `logger` with a forged `started` line) are counted apart.
 */
export function parseLogLine(text: string, complete = true, options: ParseOptions = {}): LogLine {
  let start = 0;
  if (!text.startsWith('{')) {
    start = text.indexOf('{"level":');
    if (start === -1) return isJson(text) ? { kind: 'bad', why: 'foreign' } : { kind: 'bad', why: complete ? 'not_json' : 'truncated' };
    if (syslogTag(text.slice(0, start)) !== (options.tag ?? DEFAULT_TAG)) return { kind: 'bad', why: 'foreign_tag' };
  }
  let line: unknown;
  try {
    line = JSON.parse(start === 0 ? text : text.slice(start));
  } catch {
    return { kind: 'bad', why: complete ? 'not_json' : 'truncated' };
  }
  if (!isObject(line) || line.name !== 'fcrdns-policyd' || typeof line.msg !== 'string') return { kind: 'bad', why: 'foreign' };
  const now = options.now ?? Date.now();
  try {
    if (line.msg === 'decision') return decisionRecord(line, now);
    if (line.msg === 'decision reused for another recipient') return { kind: 'reuse', ...requestLine(line, now) };
  } catch (error) {
    if (error instanceof BadField) return { kind: 'bad', why: error.why };
    throw error;
  }
  return otherLine(line, line.msg, now);
}

/** A line of ours that is not a request: its message, its time (NaN when bad) and the config it carries. */
function otherLine(line: Json, msg: string, now: number): LogLine {
  let time = Number.NaN;
  try {
    if (typeof line.time === 'string') time = daemonTime(line.time, now);
  } catch {
    // A bad time on a started / reloaded line: its config still says how the log was written.
  }
  const config = isObject(line.config) && Object.values(line.config).every((value) => typeof value === 'string') ? (line.config as Record<string, string>) : undefined;
  return { kind: 'other', msg: kept(msg, LIMITS.maxLogFieldChars), time, ...(config ? { config } : {}) };
}
