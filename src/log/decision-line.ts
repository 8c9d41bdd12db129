/**
 * The decision line (SPEC "Logs"): the outcome fields serialised once per judgement, and the
 * line per request assembled from pino's own parts around them. The hot path of every request.
 */
import pino from 'pino';
import { LIMITS } from '../config/limits.js';
import { writeMilliseconds, writePlain } from './line-bytes.js';

/** logger.ts's Logger (named here, not imported: logger.ts re-exports this module). */
type Logger = pino.Logger;

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
  /**
   * Further fields with keys fixed by the caller's code (never taken from a peer), written after
   * the forward checks; none may be named like a member above (it would take that member's place).
   */
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
  // Built in the order the line shows the members (JSON.stringify keeps insertion order), and a
  // member that is absent is `undefined`, which JSON.stringify leaves out: spreading a new object
  // per optional member made about ten objects per new client (BENCHMARKS.md "Session 9").
  const { ptr, forward, extra } = parts;
  const fields: Serialisable = {
    result: parts.result,
    temperror_stage: parts.temperrorStage || undefined,
    reason: parts.reason || undefined,
    ptr: ptr && {
      outcome: ptr.outcome,
      code: ptr.code || undefined,
      names: ptr.names,
      ignored: ptr.ignored.length > 0 ? ptr.ignored.map((item) => ({ name: item.name.slice(0, LIMITS.maxLogFieldChars), reason: item.reason })) : undefined,
      // Every unusable name by reason: the examples above are at most a few.
      ignored_counts: ptr.ignoredCounts || undefined,
    },
    forward: forward?.map(loggedCheck),
  };
  if (extra) for (const key in extra) fields[key] = extra[key];
  fields.action = parts.action;
  fields.reply = parts.reply;
  // A slice of the serialisation: a judgement kept to be reused (src/judge/judgement-memo.ts)
  // keeps a flat copy of it instead; one used once is not worth the copy.
  return { json: withinOutcomeCap(fields) };
}

/** One forward check as the line shows it: at most MAX_LOGGED_ADDRESSES addresses, the rest counted. */
function loggedCheck(check: NonNullable<OutcomeParts['forward']>[number]) {
  const over = check.addresses.length > MAX_LOGGED_ADDRESSES;
  return {
    name: check.name,
    outcome: check.outcome,
    code: check.code || undefined,
    addresses: over ? check.addresses.slice(0, MAX_LOGGED_ADDRESSES) : check.addresses,
    addresses_omitted: over || check.omitted ? Math.max(0, check.addresses.length - MAX_LOGGED_ADDRESSES) + (check.omitted ?? 0) : undefined,
    matched: check.matched,
  };
}

type Serialisable = Record<string, unknown> & {
  ptr?: Record<string, unknown> & { names: readonly string[]; ignored?: readonly unknown[] | undefined; names_omitted?: number };
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
 * `logger.info({ …fields }, 'decision')` would write (test/log/log.test.ts holds them equal),
 * assembled from pino's own level, time, bindings and stream with the outcome already serialised.
 * pino's generic per-key serialisation of the fifteen fields was the largest part of a cached
 * request's cost; here the only work per request is escaping the five request strings.
 */
export function logDecision(logger: Logger, request: RequestFields, outcome: OutcomeFields, cached: boolean, durationMs: number): void {
  const line = decisionLineParts(logger);
  if (!line.enabled()) return;
  if (line.inPlace !== undefined && writeInPlace(line, line.inPlace, request, outcome, cached, durationMs)) return;
  line.stream.write(decisionText(line, request, outcome, cached, durationMs));
}

/** The decision line as one string (every line but the in-place path's: see writeInPlace). */
function decisionText(line: DecisionLineParts, request: RequestFields, outcome: OutcomeFields, cached: boolean, durationMs: number): string {
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
  pieces[17] = cached ? CACHED_YES : CACHED_NO;
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
  return text;
}

/** The longest duration_ms value writeMilliseconds writes (String() of a huge or negative number). */
const MAX_DURATION_CHARS = 32;

/**
 * The decision line written as bytes straight into the log batcher (stdout.ts), for the line
 * nearly every request makes: request strings of printable ASCII that JSON writes as they are.
 * The bytes are those of decisionText's string (test/log/log.test.ts compares the two); a line
 * with anything to escape, or that might pass LIMITS.maxDecisionLineBytes, is left to it (false).
 * JSON.stringify of six strings, the join and the joined line (a sixth of what a cached request
 * allocated) cost more than copying bytes: bench:handler guards it (fastest round 4.0 → 3.5 µs
 * a request, young-generation collections per 10,000 requests 10.7 → 7.9; null server 6.6).
 */
function writeInPlace(line: DecisionLineParts, sink: InPlaceSink, request: RequestFields, outcome: OutcomeFields, cached: boolean, durationMs: number): boolean {
  const { json } = outcome;
  const time = line.time();
  const { clientAddress, heloName, instance, queueId, protocolState, recipient } = request;
  const most =
    line.fixedBytes + time.length * 3 + clientAddress.length + heloName.length + instance.length + queueId.length +
    protocolState.length + recipient.length + json.length * 3 + MAX_DURATION_CHARS;
  if (most > LIMITS.maxDecisionLineBytes) return false;
  const buffer = sink.room(most);
  const start = sink.used;
  let at = putBytes(buffer, start, line.startBytes);
  at = putTime(buffer, at, time);
  at = putBytes(buffer, at, line.bindingsBytes);
  at = writeField(buffer, at, FIXED_BYTES[3], clientAddress);
  at = writeField(buffer, at, FIXED_BYTES[5], heloName);
  at = writeField(buffer, at, FIXED_BYTES[7], instance);
  at = writeField(buffer, at, FIXED_BYTES[9], queueId);
  at = writeField(buffer, at, FIXED_BYTES[11], protocolState);
  at = writeField(buffer, at, FIXED_BYTES[13], recipient);
  if (at < 0) return false;
  at = putBytes(buffer, at, request.saslUsername === '' ? AUTHENTICATED_NO_BYTES : AUTHENTICATED_YES_BYTES);
  // Encoded here each time: the outcome's UTF-8 kept in a client's memo instead was one more
  // object of cold memory per request, and measured no faster (bench:handler).
  at += buffer.write(json, at, 'utf8');
  at = putBytes(buffer, at, cached ? CACHED_YES_BYTES : CACHED_NO_BYTES);
  at = writeMilliseconds(buffer, at, durationMs);
  at = putBytes(buffer, at, FIXED_BYTES[19]);
  at = putBytes(buffer, at, line.endBytes);
  sink.wrote(at - start);
  return true;
}

/** Fixed bytes copied with TypedArray#set: a loop over even 15 of them cost more (bench:handler). */
function putBytes(buffer: Uint8Array, at: number, bytes: Uint8Array | undefined): number {
  if (bytes === undefined) return at;
  buffer.set(bytes, at);
  return at + bytes.length;
}

/**
 * The timestamp piece as bytes, encoded once per distinct string: logger.ts's time function
 * gives the same string all through one millisecond, and reading a concatenated string's
 * characters one by one cost as much as writing all six request fields.
 */
const timeBytes: { text: string; bytes: Uint8Array } = { text: '', bytes: new Uint8Array(0) };

function putTime(buffer: Uint8Array, at: number, time: string): number {
  if (time !== timeBytes.text) {
    timeBytes.bytes = encoder.encode(time);
    timeBytes.text = time;
  }
  return putBytes(buffer, at, timeBytes.bytes);
}

const QUOTE = 0x22;

/** A request field (`,"name":"value"`): -1 when the value needs JSON's escaping (or `at` is -1 already). */
function writeField(buffer: Uint8Array, at: number, name: Uint8Array | undefined, value: string): number {
  if (at < 0) return at;
  at = putBytes(buffer, at, name);
  buffer[at] = QUOTE;
  at = writePlain(buffer, at + 1, value);
  if (at < 0) return at;
  buffer[at] = QUOTE;
  return at + 1;
}

/** The decision line's pieces: slots 3, 5, 7, 9, 11, 13 and 19 are fixed, the others set per line. */
const LINE_PIECES: string[] = [
  '', '', '', ',"client_address":', '', ',"helo_name":', '', ',"instance":', '', ',"queue_id":', '',
  ',"protocol_state":', '', ',"recipient":', '', '', '', '', '', ',"msg":"decision"', '',
];
const AUTHENTICATED_NO = ',"authenticated":false,';
const AUTHENTICATED_YES = ',"authenticated":true,';
const CACHED_YES = ',"cached":true,"duration_ms":';
const CACHED_NO = ',"cached":false,"duration_ms":';
/** The same pieces as UTF-8, for writeInPlace (undefined in the slots set per line). */
const encoder = new TextEncoder();
const FIXED_BYTES = LINE_PIECES.map((piece) => (piece === '' ? undefined : encoder.encode(piece)));
const AUTHENTICATED_NO_BYTES = encoder.encode(AUTHENTICATED_NO);
const AUTHENTICATED_YES_BYTES = encoder.encode(AUTHENTICATED_YES);
const CACHED_YES_BYTES = encoder.encode(CACHED_YES);
const CACHED_NO_BYTES = encoder.encode(CACHED_NO);
/** The bytes of a line's fixed pieces (the longer of each pair, and the quotes round each request string). */
const FIXED_PIECE_BYTES =
  FIXED_BYTES.reduce((sum, bytes) => sum + (bytes?.length ?? 0), 0) + AUTHENTICATED_YES_BYTES.length + CACHED_NO_BYTES.length + 12;

interface DecisionLineParts {
  enabled: () => boolean;
  /** `{"level":"info"` as pino writes it. */
  start: string;
  time: () => string;
  /** The logger's bindings (`,"name":…,"conn":…`), fixed when it was made. */
  bindings: string;
  end: string;
  stream: { write(line: string): void };
  /** The stream, when it takes lines in place (stdout.ts's LineBatcher); and the fixed parts as bytes for it. */
  inPlace: InPlaceSink | undefined;
  startBytes: Uint8Array;
  bindingsBytes: Uint8Array;
  endBytes: Uint8Array;
  /** The bytes of every fixed part of a line: start, bindings, end and the pieces between the fields. */
  fixedBytes: number;
}

/** A stream that takes a line's bytes in place (stdout.ts's LineBatcher). */
export interface InPlaceSink {
  /** Where the next line starts in the buffer room() gives. */
  readonly used: number;
  /** The buffer with room for a line of at most `bytes` bytes from `used` (at most 64 KiB). */
  room(bytes: number): Buffer;
  /** A line of `bytes` bytes was written at `used`. */
  wrote(bytes: number): void;
}

const isInPlaceSink = (stream: object): stream is InPlaceSink =>
  typeof (stream as Partial<InPlaceSink>).room === 'function' && typeof (stream as Partial<InPlaceSink>).wrote === 'function';

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
    const start = internals[pino.symbols.lsCacheSym][level] ?? '{"level":"info"';
    const bindings = internals[pino.symbols.chindingsSym];
    const end = internals[pino.symbols.endSym];
    const stream = internals[pino.symbols.streamSym];
    const [startBytes, bindingsBytes, endBytes] = [start, bindings, end].map((text) => encoder.encode(text)) as [Uint8Array, Uint8Array, Uint8Array];
    parts = {
      enabled: () => logger.isLevelEnabled('info'),
      start,
      time: internals[pino.symbols.timeSym],
      bindings,
      end,
      stream,
      inPlace: isInPlaceSink(stream) ? stream : undefined,
      startBytes,
      bindingsBytes,
      endBytes,
      fixedBytes: startBytes.length + bindingsBytes.length + endBytes.length + FIXED_PIECE_BYTES,
    };
    lineParts.set(logger, parts);
  }
  return parts;
}
