/**
 * The Postfix policy-delegation codec (SMTPD_POLICY_README): bytes in, requests out;
 * an action in, reply bytes out. It never sees a socket and holds at most one request's
 * worth of bytes, so a peer cannot make it grow without bound.
 */
import { isAscii } from 'node:buffer';
import { LIMITS } from './limits.js';

const LF = 0x0a;
const CR = 0x0d;

/** Attributes of one request: a repeated name keeps its last value (Postfix never repeats one). */
export interface PolicyAttributes extends Iterable<[string, string]> {
  get(name: string): string | undefined;
}

/**
 * A request's attributes read straight from the text its lines arrived in: nothing is cut out
 * until a name is asked for, so the two dozen attributes the daemon never reads cost nothing.
 * `lines` holds, per attribute line, the offset where it starts and where its `=` is; the
 * value runs to the line's LF (or CR LF).
 */
class TextAttributes implements PolicyAttributes {
  constructor(
    private readonly text: string,
    private readonly lines: readonly number[],
  ) {}

  get(name: string): string | undefined {
    const { text, lines } = this;
    // From the last line back: a repeated name keeps its last value (Postfix never repeats one).
    for (let i = lines.length - 2; i >= 0; i -= 2) {
      const start = lines[i] as number;
      const equals = lines[i + 1] as number;
      if (equals - start === name.length && text.startsWith(name, start)) {
        return text.slice(equals + 1, lineEnd(text, text.indexOf('\n', equals)));
      }
    }
    return undefined;
  }

  /** The values of several attributes, read in one pass over the lines (see pickAttributes). */
  pick(wanted: AttributeNames): Array<string | undefined> {
    const { text, lines } = this;
    const { names, byLength } = wanted;
    const values: Array<string | undefined> = new Array<string | undefined>(names.length).fill(undefined);
    for (let i = 0; i < lines.length; i += 2) {
      const start = lines[i] as number;
      const equals = lines[i + 1] as number;
      const candidates = byLength[equals - start];
      if (candidates === undefined) continue;
      for (const index of candidates) {
        if (text.startsWith(names[index] as string, start)) {
          // A later line overwrites: a repeated name keeps its last value.
          values[index] = text.slice(equals + 1, lineEnd(text, text.indexOf('\n', equals)));
          break;
        }
      }
    }
    return values;
  }

  *[Symbol.iterator](): IterableIterator<[string, string]> {
    const { text, lines } = this;
    for (let i = 0; i < lines.length; i += 2) {
      const start = lines[i] as number;
      const equals = lines[i + 1] as number;
      yield [text.slice(start, equals), text.slice(equals + 1, lineEnd(text, text.indexOf('\n', equals)))];
    }
  }
}

/** A fixed list of attribute names, prepared once for pickAttributes. */
export class AttributeNames {
  /** Per name length, the indexes in `names` of the names that long. */
  readonly byLength: Array<number[] | undefined> = [];

  constructor(readonly names: readonly string[]) {
    names.forEach((name, index) => (this.byLength[name.length] ??= []).push(index));
  }
}

/**
 * The values of `wanted.names`, in that order (undefined where absent). A request's text is
 * walked once, instead of once per name: a request carries some thirty attributes, and the
 * daemon reads eight of them.
 */
export function pickAttributes(attributes: PolicyAttributes, wanted: AttributeNames): Array<string | undefined> {
  if (attributes instanceof TextAttributes) return attributes.pick(wanted);
  return wanted.names.map((name) => attributes.get(name));
}

/** Where a line's content ends: at its LF, or at the CR before it (CRLF from hand-written clients). */
function lineEnd(text: string, newline: number): number {
  return newline > 0 && text.charCodeAt(newline - 1) === CR ? newline - 1 : newline;
}

export type DecodeEvent =
  | { kind: 'request'; attributes: PolicyAttributes }
  | { kind: 'trouble'; problem: string };

/** A decoder's events between two pushes: none (never pushed to; push() starts a new array). */
const NO_EVENTS: DecodeEvent[] = [];

/**
 * Incremental request framer. Feed it chunks as they arrive; it returns each complete
 * request, or one `trouble` event after which it refuses further input (the server closes
 * the connection: "in case of trouble the policy server must not send a reply",
 * POSTFIX-FACTS 4).
 *
 * Postfix writes each request whole (POSTFIX-FACTS 2), so the usual chunk holds complete
 * ASCII lines: those are decoded with one string conversion for the whole run of lines and
 * split as text, which is several times cheaper than converting every name and value apart.
 * Non-ASCII runs (SMTPUTF8 values) and a line split across chunks take the byte path.
 */
export class PolicyDecoder {
  private pending: Buffer[] = [];
  private pendingBytes = 0;
  /** Attributes of a request begun in an earlier chunk (or with non-ASCII lines). */
  private attributes = new Map<string, string>();
  private requestBytes = 0;
  private failed = false;
  private events: DecodeEvent[] = NO_EVENTS;

  /** True while part of a request has arrived but not its terminating empty line. */
  get hasPartialRequest(): boolean {
    return this.pendingBytes > 0 || this.attributes.size > 0;
  }

  /** Consume one chunk; returns the events it completes, in order. */
  push(chunk: Buffer): DecodeEvent[] {
    if (this.failed) return [];
    this.events = [];
    this.decode(chunk);
    // Handed over, not kept: a request waiting for DNS must not keep the text of its whole read
    // alive through the decoder (every young-generation GC would copy it again).
    const events = this.events;
    this.events = NO_EVENTS;
    return events;
  }

  private decode(chunk: Buffer): void {
    let start = 0;
    if (this.pendingBytes > 0) {
      // Finish the line an earlier chunk began.
      const newline = chunk.indexOf(LF);
      if (newline === -1) {
        this.keepPartial(chunk, 0);
        return;
      }
      this.pending.push(chunk.subarray(0, newline));
      const line = Buffer.concat(this.pending, this.pendingBytes + newline);
      this.pending = [];
      this.pendingBytes = 0;
      if (!this.byteLine(line, 0, line.length)) return;
      start = newline + 1;
    }
    const lastNewline = chunk.lastIndexOf(LF);
    if (lastNewline >= start) {
      const run = start === 0 && lastNewline === chunk.length - 1 ? chunk : chunk.subarray(start, lastNewline + 1);
      const complete = isAscii(run) ? this.textLines(run.toString('latin1')) : this.byteLines(chunk, start, lastNewline + 1);
      if (!complete) return;
      start = lastNewline + 1;
    }
    if (start < chunk.length) this.keepPartial(chunk, start);
  }

  /** Keep the start of a line whose LF has not arrived, within the line and request limits. */
  private keepPartial(chunk: Buffer, start: number): void {
    const rest = chunk.length - start;
    if (this.pendingBytes + rest > LIMITS.maxLineBytes) {
      this.fail(`line longer than ${LIMITS.maxLineBytes} bytes`);
    } else if (this.requestBytes + this.pendingBytes + rest > LIMITS.maxRequestBytes) {
      this.fail(`request larger than ${LIMITS.maxRequestBytes} bytes`);
    } else {
      this.pending.push(chunk.subarray(start));
      this.pendingBytes += rest;
    }
  }

  /**
   * Complete ASCII lines as one string (its offsets are byte offsets); false after trouble. A
   * request that begins and ends here is handed on as a view of the text; the lines of one that
   * began earlier, or that goes on in the next chunk, are kept name by name.
   */
  private textLines(text: string): boolean {
    let start = 0;
    // The attribute lines of a request that began in this text (start and "=" offsets), or
    // undefined when it began in an earlier chunk (its attributes so far are in this.attributes).
    let lines: number[] | undefined = this.attributes.size === 0 ? [] : undefined;
    while (start < text.length) {
      const newline = text.indexOf('\n', start);
      const end = lineEnd(text, newline);
      if (!this.checkLine(end - start)) return false;
      if (end === start) {
        if (lines === undefined) {
          if (!this.endRequest()) return false;
        } else if (lines.length === 0) {
          // An empty line before any attribute: nothing to answer; Postfix never sends it.
          return this.fail('empty request');
        } else {
          this.events.push({ kind: 'request', attributes: new TextAttributes(text, lines) });
          this.requestBytes = 0;
        }
        lines = [];
      } else {
        const equals = text.indexOf('=', start);
        if (equals === start || equals === -1 || equals > end) return this.badLine(equals === start);
        if (lines === undefined) this.addAttribute(text.slice(start, equals), text.slice(equals + 1, end));
        else lines.push(start, equals);
      }
      start = newline + 1;
    }
    // A request that goes on in the next chunk: keep what arrived of it.
    if (lines !== undefined && lines.length > 0) {
      for (const [name, value] of new TextAttributes(text, lines)) this.addAttribute(name, value);
    }
    return true;
  }

  /** Complete lines that carry non-ASCII bytes, each converted apart; false after trouble. */
  private byteLines(chunk: Buffer, start: number, end: number): boolean {
    while (start < end) {
      const newline = chunk.indexOf(LF, start);
      if (!this.byteLine(chunk, start, newline)) return false;
      start = newline + 1;
    }
    return true;
  }

  /** One line given as bytes [start, end) without its LF; false after trouble. */
  private byteLine(bytes: Buffer, start: number, end: number): boolean {
    if (end > start && bytes[end - 1] === CR) end--;
    if (!this.checkLine(end - start)) return false;
    if (end === start) return this.endRequest();
    const equals = bytes.indexOf(0x3d, start);
    if (equals === start || equals === -1 || equals > end) return this.badLine(equals === start);
    // Values may carry UTF-8 (SMTPUTF8); invalid bytes become U+FFFD and are never echoed.
    this.addAttribute(bytes.toString('utf8', start, equals), bytes.toString('utf8', equals + 1, end));
    return true;
  }

  /** Count one line of `length` bytes (plus its LF) against the limits; false after trouble. */
  private checkLine(length: number): boolean {
    if (length > LIMITS.maxLineBytes) return this.fail(`line longer than ${LIMITS.maxLineBytes} bytes`);
    this.requestBytes += length + 1;
    if (this.requestBytes > LIMITS.maxRequestBytes) return this.fail(`request larger than ${LIMITS.maxRequestBytes} bytes`);
    return true;
  }

  private addAttribute(name: string, value: string): void {
    // Last value wins, as in Postfix's own example policy servers; Postfix never repeats one.
    this.attributes.set(name, value);
  }

  /** The empty line: the request is complete; false after trouble. */
  private endRequest(): boolean {
    // An empty line before any attribute: nothing to answer; Postfix never sends it.
    if (this.attributes.size === 0) return this.fail('empty request');
    this.events.push({ kind: 'request', attributes: this.attributes });
    this.attributes = new Map();
    this.requestBytes = 0;
    return true;
  }

  private badLine(emptyName: boolean): false {
    return this.fail(emptyName ? 'attribute line with an empty name' : 'line without "="');
  }

  private fail(problem: string): false {
    this.failed = true;
    this.pending = [];
    this.pendingBytes = 0;
    this.attributes = new Map();
    this.events.push({ kind: 'trouble', problem });
    return false;
  }
}

/**
 * One reply. The action must be printable ASCII with no line break: Postfix reads
 * `action=…` up to LF, and a CR would make the reply unparsable (POSTFIX-FACTS 1).
 */
export function encodeReply(action: string): Buffer {
  if (!/^[\x20-\x7e]+$/.test(action)) {
    throw new Error('reply action must be non-empty printable ASCII');
  }
  return Buffer.from(`action=${action}\n\n`, 'latin1');
}
