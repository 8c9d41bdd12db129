/**
 * The Postfix policy-delegation codec (SMTPD_POLICY_README): bytes in, requests out;
 * an action in, reply bytes out. It never sees a socket and holds at most one request's
 * worth of bytes, so a peer cannot make it grow without bound.
 */
import { isAscii } from 'node:buffer';
import { LIMITS } from './limits.js';

/** Attributes of one request, in order of first arrival; a repeated name keeps its last value. */
export type PolicyAttributes = Map<string, string>;

export type DecodeEvent =
  | { kind: 'request'; attributes: PolicyAttributes }
  | { kind: 'trouble'; problem: string };

const LF = 0x0a;
const CR = 0x0d;

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
  private attributes: PolicyAttributes = new Map();
  private requestBytes = 0;
  private failed = false;
  private events: DecodeEvent[] = [];

  /** True while part of a request has arrived but not its terminating empty line. */
  get hasPartialRequest(): boolean {
    return this.pendingBytes > 0 || this.attributes.size > 0;
  }

  /** Consume one chunk; returns the events it completes, in order. */
  push(chunk: Buffer): DecodeEvent[] {
    if (this.failed) return [];
    this.events = [];
    let start = 0;
    if (this.pendingBytes > 0) {
      // Finish the line an earlier chunk began.
      const newline = chunk.indexOf(LF);
      if (newline === -1) {
        this.keepPartial(chunk, 0);
        return this.events;
      }
      this.pending.push(chunk.subarray(0, newline));
      const line = Buffer.concat(this.pending, this.pendingBytes + newline);
      this.pending = [];
      this.pendingBytes = 0;
      if (!this.byteLine(line, 0, line.length)) return this.events;
      start = newline + 1;
    }
    const lastNewline = chunk.lastIndexOf(LF);
    if (lastNewline >= start) {
      const run = start === 0 && lastNewline === chunk.length - 1 ? chunk : chunk.subarray(start, lastNewline + 1);
      const complete = isAscii(run) ? this.textLines(run.toString('latin1')) : this.byteLines(chunk, start, lastNewline + 1);
      if (!complete) return this.events;
      start = lastNewline + 1;
    }
    if (start < chunk.length) this.keepPartial(chunk, start);
    return this.events;
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

  /** Complete ASCII lines as one string (its offsets are byte offsets); false after trouble. */
  private textLines(text: string): boolean {
    let start = 0;
    while (start < text.length) {
      const newline = text.indexOf('\n', start);
      // Postfix sends LF; tolerate CRLF from hand-written clients and test tools.
      const end = newline > start && text.charCodeAt(newline - 1) === CR ? newline - 1 : newline;
      if (!this.checkLine(end - start)) return false;
      if (end === start) {
        if (!this.endRequest()) return false;
      } else {
        const equals = text.indexOf('=', start);
        if (equals === start || equals === -1 || equals > end) return this.badLine(equals === start);
        this.addAttribute(text.slice(start, equals), text.slice(equals + 1, end));
      }
      start = newline + 1;
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
