/**
 * One line of the daemon's JSON log, read back for `report` and `replay`: a decision, a reused
 * decision (a later recipient of a message), another message of ours (started, reloaded, a
 * warning), or bad input of one kind or another. Every field of a decision line is checked for
 * its type here, so the rest of the code reads typed records and nothing a peer put into a
 * log line (the HELO name, the recipient) is trusted for more than a string.
 */
import type { HeloStatus } from './policy.js';

export type LoggedAction = 'dunno' | 'warn' | 'defer' | 'reject';

export interface LoggedForwardCheck {
  readonly name: string;
  readonly outcome: 'answer' | 'not_found' | 'temporary';
  readonly code?: string;
  readonly addresses: readonly string[];
  readonly matched: boolean;
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
  readonly ptr?: { readonly outcome: string; readonly code?: string; readonly names: readonly string[] };
  readonly forward?: readonly LoggedForwardCheck[];
  readonly helo?: HeloStatus;
  readonly generic?: { readonly name: string; readonly reason: string };
  readonly passName?: string;
  readonly cached: boolean;
  readonly durationMs: number;
  readonly requestFieldsCut: boolean;
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
  /** A decision line with a field missing or of the wrong type. */
  | 'wrong_type'
  /** Longer than any line the daemon writes (a decision line is at most 4 KiB). */
  | 'too_long';

export const BAD_LINE_TEXT: Record<BadLine, string> = {
  not_json: 'not JSON',
  truncated: 'truncated last line',
  foreign: 'JSON from another program',
  wrong_type: 'decision lines with a missing field or a field of the wrong type',
  too_long: 'lines longer than 64 KiB',
};

const ACTIONS: readonly string[] = ['dunno', 'warn', 'defer', 'reject'];
const HELO: readonly string[] = ['confirmed', 'resolves', 'literal', 'mismatch', 'literal_mismatch', 'invalid', 'missing', 'temperror', 'unchecked'];
const OUTCOMES: readonly string[] = ['answer', 'not_found', 'temporary'];
const RESULTS: readonly string[] = ['pass', 'no_ptr', 'no_forward', 'mismatch', 'temperror', 'generic', 'skipped'];

type Json = Record<string, unknown>;
const isObject = (value: unknown): value is Json => typeof value === 'object' && value !== null && !Array.isArray(value);
const isStringArray = (value: unknown): value is string[] => Array.isArray(value) && value.every((item) => typeof item === 'string');

/** Thrown inside the readers below when a field has the wrong type; caught in parseLogLine. */
class WrongType extends Error {}
const fail = (): never => {
  throw new WrongType();
};
const str = (line: Json, key: string): string => (typeof line[key] === 'string' ? (line[key] as string) : fail());
const optionalStr = (line: Json, key: string): string | undefined =>
  line[key] === undefined ? undefined : typeof line[key] === 'string' ? (line[key] as string) : fail();
const optionalBool = (line: Json, key: string): boolean | undefined =>
  line[key] === undefined ? undefined : typeof line[key] === 'boolean' ? (line[key] as boolean) : fail();

function requestLine(line: Json): RequestLine {
  const timeText = str(line, 'time');
  const time = Date.parse(timeText);
  if (Number.isNaN(time)) fail();
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
    reply: str(line, 'reply'),
  };
}

function forwardChecks(value: unknown): LoggedForwardCheck[] | undefined {
  if (value === undefined) return undefined;
  if (!Array.isArray(value)) return fail();
  return value.map((check: unknown) => {
    if (!isObject(check)) return fail();
    const outcome = str(check, 'outcome');
    if (!OUTCOMES.includes(outcome)) fail();
    if (!isStringArray(check.addresses) || typeof check.matched !== 'boolean') fail();
    const code = optionalStr(check, 'code');
    return {
      name: str(check, 'name'),
      outcome: outcome as LoggedForwardCheck['outcome'],
      ...(code !== undefined ? { code } : {}),
      addresses: check.addresses as string[],
      matched: check.matched as boolean,
    };
  });
}

function decisionRecord(line: Json): DecisionRecord {
  const request = requestLine(line);
  const result = str(line, 'result');
  if (!RESULTS.includes(result)) fail();
  const stage = optionalStr(line, 'temperror_stage');
  if (stage !== undefined && stage !== 'ptr' && stage !== 'forward') fail();
  let ptr: DecisionRecord['ptr'];
  if (line.ptr !== undefined) {
    if (!isObject(line.ptr) || !isStringArray(line.ptr.names)) return fail();
    const code = optionalStr(line.ptr, 'code');
    ptr = { outcome: str(line.ptr, 'outcome'), ...(code !== undefined ? { code } : {}), names: line.ptr.names };
  }
  const helo = optionalStr(line, 'helo');
  if (helo !== undefined && !HELO.includes(helo)) fail();
  let generic: DecisionRecord['generic'];
  if (line.generic !== undefined) {
    if (!isObject(line.generic)) return fail();
    generic = { name: str(line.generic, 'name'), reason: str(line.generic, 'reason') };
  }
  const duration = line.duration_ms;
  if (typeof duration !== 'number' || typeof line.cached !== 'boolean') fail();
  const forward = forwardChecks(line.forward);
  const reason = optionalStr(line, 'reason');
  const passName = optionalStr(line, 'pass_name');
  return {
    kind: 'decision',
    ...request,
    heloName: str(line, 'helo_name'),
    result,
    ...(reason !== undefined ? { reason } : {}),
    ...(stage !== undefined ? { temperrorStage: stage as 'ptr' | 'forward' } : {}),
    ...(ptr ? { ptr } : {}),
    ...(forward ? { forward } : {}),
    ...(helo !== undefined ? { helo: helo as HeloStatus } : {}),
    ...(generic ? { generic } : {}),
    ...(passName !== undefined ? { passName } : {}),
    cached: line.cached as boolean,
    durationMs: duration as number,
    requestFieldsCut: line.request_fields_cut === true,
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
 * Classify one line. `complete` is false for an input's last line when no newline ended it. A
 * syslog or `journalctl -o short` prefix before the JSON is skipped.
 */
export function parseLogLine(text: string, complete = true): LogLine {
  let start = 0;
  if (!text.startsWith('{')) {
    start = text.indexOf('{"level":');
    if (start === -1) return isJson(text) ? { kind: 'bad', why: 'foreign' } : { kind: 'bad', why: complete ? 'not_json' : 'truncated' };
  }
  let line: unknown;
  try {
    line = JSON.parse(start === 0 ? text : text.slice(start));
  } catch {
    return { kind: 'bad', why: complete ? 'not_json' : 'truncated' };
  }
  if (!isObject(line) || line.name !== 'fcrdns-policyd' || typeof line.msg !== 'string') return { kind: 'bad', why: 'foreign' };
  try {
    if (line.msg === 'decision') return decisionRecord(line);
    if (line.msg === 'decision reused for another recipient') return { kind: 'reuse', ...requestLine(line) };
  } catch (error) {
    if (error instanceof WrongType) return { kind: 'bad', why: 'wrong_type' };
    throw error;
  }
  const time = typeof line.time === 'string' ? Date.parse(line.time) : Number.NaN;
  const config = isObject(line.config) && Object.values(line.config).every((value) => typeof value === 'string') ? (line.config as Record<string, string>) : undefined;
  return { kind: 'other', msg: line.msg, time, ...(config ? { config } : {}) };
}
