/**
 * The decision line (SPEC "Logs"): the outcome fields serialised once per judgement, and the
 * line per request assembled from pino's own parts around them. The hot path of every request.
 */
import pino from 'pino';
import { LIMITS } from '../config/limits.js';
import { flatCopy } from '../util/text.js';

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
 * `logger.info({ …fields }, 'decision')` would write (test/log/log.test.ts holds them equal),
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
