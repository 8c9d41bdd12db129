/**
 * The Postfix policy-delegation codec (SMTPD_POLICY_README): bytes in, requests out (replies:
 * reply.ts). It never sees a socket and holds at most one request's
 * worth of bytes, so a peer cannot make it grow without bound.
 */
import { isAscii } from 'node:buffer';
import { LIMITS } from '../config/limits.js';

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
    readonly text: string,
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

  /** The same attributes over a copy of their own lines only (see keptAttributes). */
  kept(): { attributes: TextAttributes; bytes: number } {
    const { text, lines } = this;
    const start = lines[0] as number;
    const end = text.indexOf('\n', lines[lines.length - 1] as number) + 1;
    // Through a Buffer: a new flat string, sharing nothing with the read's text.
    const own = Buffer.from(text.slice(start, end), 'latin1').toString('latin1');
    return { attributes: new TextAttributes(own, lines.map((offset) => offset - start)), bytes: own.length };
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

/**
 * The attributes of a request that is kept after its read (it waits for its connection's turn):
 * its own lines copied out, since a view would keep the whole read's text alive. `bytes` is what
 * it holds, counted by the server with the bytes of unfinished requests.
 */
export function keptAttributes(attributes: PolicyAttributes): { attributes: PolicyAttributes; bytes: number } {
  if (attributes instanceof TextAttributes) return attributes.kept();
  let bytes = 0;
  for (const [name, value] of attributes) bytes += name.length + value.length + 2;
  return { attributes, bytes };
}

/** textLines' scratch array: decoding is synchronous, so one serves every decoder. */
const LINE_OFFSETS: number[] = [];

/** Characters of read text the values are cut from, kept alive by any one of them (0: none is cut). */
export const sharedTextLength = (attributes: PolicyAttributes): number => (attributes instanceof TextAttributes ? attributes.text.length : 0);

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

const EQUALS = 0x3d;

/** The line a chunk ended in the middle of: its length so far and what its bytes so far say. */
interface OpenLine {
  bytes: number;
  firstByte: number;
  hasEquals: boolean;
  endsInCr: boolean;
}

const closedLine = (): OpenLine => ({ bytes: 0, firstByte: -1, hasEquals: false, endsInCr: false });

/**
 * Incremental request framer. Feed it chunks as they arrive; it returns each complete
 * request, or one `trouble` event after which it refuses further input (the server closes
 * the connection: "in case of trouble the policy server must not send a reply",
 * POSTFIX-FACTS 4).
 *
 * Postfix writes each request whole (POSTFIX-FACTS 2), so the usual chunk holds complete
 * ASCII lines: those are decoded with one string conversion for the whole run of lines and
 * split as text, which is several times cheaper than converting every name and value apart.
 * Non-ASCII runs (SMTPUTF8 values) take the byte path.
 *
 * A request whose empty line has not arrived is held as the raw bytes it came in, never as
 * strings and map entries (issue 24: 63 KiB of `k1=` lines cost ~0.75 MB of heap that way, and
 * 150 such connections ended the daemon). Its lines are checked as they arrive (line length,
 * request size, attribute count, `=`), and it is decoded once, when it is complete. `heldBytes`
 * says what it holds, so the server can bound the total across connections.
 */
export class PolicyDecoder {
  /** Copies of the bytes of a request begun in an earlier chunk, until its empty line. */
  private held: Buffer[] = [];
  private heldTotal = 0;
  /** Complete attribute lines of the held request. */
  private heldAttributes = 0;
  /** The line the last chunk ended in (part of the held request). */
  private open: OpenLine = closedLine();
  /** Bytes of the current request's complete lines, each with its LF. */
  private requestBytes = 0;
  private failed = false;
  private events: DecodeEvent[] = NO_EVENTS;

  /** True while part of a request has arrived but not its terminating empty line. */
  get hasPartialRequest(): boolean {
    return this.heldTotal > 0;
  }

  /** Bytes held for a request whose empty line has not arrived (at most maxRequestBytes). */
  get heldBytes(): number {
    return this.heldTotal;
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

  /** Drop what is held and refuse further input (the server cuts the connection off). */
  discard(): void {
    this.failed = true;
    this.release();
  }

  private decode(chunk: Buffer): void {
    let start = 0;
    if (this.heldTotal > 0) {
      start = this.continueHeld(chunk);
      if (start < 0) return;
    }
    if (start < chunk.length) this.fresh(chunk, start);
  }

  /**
   * Go on with the held request: check the chunk's lines until its empty line, then decode the
   * whole request. Returns where the chunk's next request starts, or -1 when the chunk is all
   * held (or trouble).
   */
  private continueHeld(chunk: Buffer): number {
    let at = 0;
    for (;;) {
      const newline = chunk.indexOf(LF, at);
      if (!this.extendLine(chunk, at, newline === -1 ? chunk.length : newline)) return -1;
      if (newline === -1) {
        this.hold(chunk, 0);
        return -1;
      }
      const line = this.closeLine();
      if (line === false) return -1;
      at = newline + 1;
      if (line === 'end') {
        const whole = Buffer.concat([...this.held, chunk.subarray(0, at)]);
        this.release();
        this.requestBytes = 0;
        return this.completeLines(whole) < 0 ? -1 : at;
      }
    }
  }

  /** Requests that start in this chunk at `start`: decode the complete ones, hold the last if unfinished. */
  private fresh(chunk: Buffer, start: number): void {
    const lastNewline = chunk.lastIndexOf(LF);
    let unfinished = start;
    if (lastNewline >= start) {
      const run = start === 0 && lastNewline === chunk.length - 1 ? chunk : chunk.subarray(start, lastNewline + 1);
      const offset = this.completeLines(run);
      if (offset < 0) return;
      unfinished = start + offset;
    }
    if (unfinished === chunk.length) return;
    if (!this.extendLine(chunk, Math.max(start, lastNewline + 1), chunk.length)) return;
    this.hold(chunk, unfinished);
  }

  /** Complete lines: decoded as requests; returns where an unfinished request in them starts (-1 after trouble). */
  private completeLines(run: Buffer): number {
    return isAscii(run) ? this.textLines(run.toString('latin1')) : this.byteLines(run);
  }

  /** Keep a copy of chunk[from..]: a view would keep the whole read alive. */
  private hold(chunk: Buffer, from: number): void {
    const copy = Buffer.allocUnsafeSlow(chunk.length - from);
    chunk.copy(copy, 0, from);
    this.held.push(copy);
    this.heldTotal += copy.length;
  }

  private release(): void {
    this.held = [];
    this.heldTotal = 0;
    this.heldAttributes = 0;
    this.open = closedLine();
  }

  /** Add chunk[from, to) to the open line, within the line and request limits; false after trouble. */
  private extendLine(chunk: Buffer, from: number, to: number): boolean {
    const open = this.open;
    if (to > from) {
      if (open.bytes === 0) open.firstByte = chunk[from] ?? -1;
      if (!open.hasEquals) open.hasEquals = chunk.subarray(from, to).includes(EQUALS);
      open.endsInCr = chunk[to - 1] === CR;
      open.bytes += to - from;
    }
    if (open.bytes > LIMITS.maxLineBytes) return this.fail(`line longer than ${LIMITS.maxLineBytes} bytes`);
    if (this.requestBytes + open.bytes > LIMITS.maxRequestBytes) return this.fail(`request larger than ${LIMITS.maxRequestBytes} bytes`);
    return true;
  }

  /** The open line got its LF: the request's end, one more attribute, or trouble (false). */
  private closeLine(): 'end' | 'attribute' | false {
    const { bytes, firstByte, hasEquals, endsInCr } = this.open;
    this.open = closedLine();
    const length = bytes - (endsInCr ? 1 : 0);
    if (!this.checkLine(length)) return false;
    if (length === 0) return 'end';
    if (firstByte === EQUALS || !hasEquals) return this.badLine(firstByte === EQUALS);
    if (++this.heldAttributes > LIMITS.maxAttributesPerRequest) return this.tooManyAttributes();
    return 'attribute';
  }

  /**
   * Complete ASCII lines as one string (its offsets are byte offsets). Each request that ends
   * here is handed on as a view of the text. Returns the offset where a request that goes on in
   * the next chunk starts (the text's length when none), its attribute lines counted; -1 after
   * trouble.
   */
  private textLines(text: string): number {
    let start = 0;
    let requestStart = 0;
    // The attribute lines of the current request (start and "=" offsets), gathered in one array
    // shared by every decoder and copied out at the request's end: grown line by line, a new
    // array per request was a kilobyte of garbage per request.
    const lines = LINE_OFFSETS;
    let count = 0;
    while (start < text.length) {
      const newline = text.indexOf('\n', start);
      const end = lineEnd(text, newline);
      if (!this.checkLine(end - start)) return -1;
      if (end === start) {
        // An empty line before any attribute: nothing to answer; Postfix never sends it.
        if (count === 0) return this.stop(this.fail('empty request'));
        this.events.push({ kind: 'request', attributes: new TextAttributes(text, lines.slice(0, count)) });
        this.requestBytes = 0;
        count = 0;
        requestStart = newline + 1;
      } else {
        const equals = text.indexOf('=', start);
        if (equals === start || equals === -1 || equals > end) return this.stop(this.badLine(equals === start));
        if (count === 2 * LIMITS.maxAttributesPerRequest) return this.stop(this.tooManyAttributes());
        lines[count++] = start;
        lines[count++] = equals;
      }
      start = newline + 1;
    }
    this.heldAttributes = count / 2;
    return count > 0 ? requestStart : text.length;
  }

  /** Complete lines that carry non-ASCII bytes, each converted apart; returns as textLines does. */
  private byteLines(run: Buffer): number {
    let start = 0;
    let requestStart = 0;
    let attributes = new Map<string, string>();
    let count = 0;
    while (start < run.length) {
      const newline = run.indexOf(LF, start);
      const end = newline > start && run[newline - 1] === CR ? newline - 1 : newline;
      if (!this.checkLine(end - start)) return -1;
      if (end === start) {
        if (count === 0) return this.stop(this.fail('empty request'));
        this.events.push({ kind: 'request', attributes });
        this.requestBytes = 0;
        attributes = new Map();
        count = 0;
        requestStart = newline + 1;
      } else {
        const equals = run.indexOf(EQUALS, start);
        if (equals === start || equals === -1 || equals > end) return this.stop(this.badLine(equals === start));
        if (++count > LIMITS.maxAttributesPerRequest) return this.stop(this.tooManyAttributes());
        // Values may carry UTF-8 (SMTPUTF8); invalid bytes become U+FFFD and are never echoed.
        // Last value wins, as in Postfix's own example policy servers; Postfix never repeats one.
        attributes.set(run.toString('utf8', start, equals), run.toString('utf8', equals + 1, end));
      }
      start = newline + 1;
    }
    // A request that goes on in the next chunk is held as bytes and decoded again when complete.
    this.heldAttributes = count;
    return count > 0 ? requestStart : run.length;
  }

  /** Count one line of `length` bytes (plus its LF) against the limits; false after trouble. */
  private checkLine(length: number): boolean {
    if (length > LIMITS.maxLineBytes) return this.fail(`line longer than ${LIMITS.maxLineBytes} bytes`);
    this.requestBytes += length + 1;
    if (this.requestBytes > LIMITS.maxRequestBytes) return this.fail(`request larger than ${LIMITS.maxRequestBytes} bytes`);
    return true;
  }

  private badLine(emptyName: boolean): false {
    return this.fail(emptyName ? 'attribute line with an empty name' : 'line without "="');
  }

  private tooManyAttributes(): false {
    return this.fail(`more than ${LIMITS.maxAttributesPerRequest} attributes in one request`);
  }

  /** Trouble already reported: the offset the line scans return for it. */
  private stop(_trouble: false): -1 {
    return -1;
  }

  private fail(problem: string): false {
    this.failed = true;
    this.release();
    this.events.push({ kind: 'trouble', problem });
    return false;
  }
}
