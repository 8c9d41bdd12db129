/**
 * The Postfix policy-delegation codec (SMTPD_POLICY_README): bytes in, requests out;
 * an action in, reply bytes out. It never sees a socket and holds at most one request's
 * worth of bytes, so a peer cannot make it grow without bound.
 */
import { LIMITS } from './limits.js';

/** Attributes of one request, in arrival order; a repeated name keeps its last value. */
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
 */
export class PolicyDecoder {
  private pending: Buffer[] = [];
  private pendingBytes = 0;
  private attributes: PolicyAttributes = new Map();
  private requestBytes = 0;
  private failed = false;

  /** True while part of a request has arrived but not its terminating empty line. */
  get hasPartialRequest(): boolean {
    return this.pendingBytes > 0 || this.attributes.size > 0;
  }

  /** Consume one chunk; returns the events it completes, in order. */
  push(chunk: Buffer): DecodeEvent[] {
    if (this.failed) return [];
    const events: DecodeEvent[] = [];
    let start = 0;
    while (start < chunk.length) {
      const newline = chunk.indexOf(LF, start);
      if (newline === -1) {
        const rest = chunk.length - start;
        if (this.pendingBytes + rest > LIMITS.maxLineBytes) {
          return this.fail(events, `line longer than ${LIMITS.maxLineBytes} bytes`);
        }
        if (this.requestBytes + this.pendingBytes + rest > LIMITS.maxRequestBytes) {
          return this.fail(events, `request larger than ${LIMITS.maxRequestBytes} bytes`);
        }
        this.pending.push(chunk.subarray(start));
        this.pendingBytes += rest;
        break;
      }
      let line: Buffer;
      if (this.pendingBytes === 0) {
        line = chunk.subarray(start, newline);
      } else {
        this.pending.push(chunk.subarray(start, newline));
        line = Buffer.concat(this.pending, this.pendingBytes + newline - start);
        this.pending = [];
        this.pendingBytes = 0;
      }
      start = newline + 1;
      // Postfix sends LF; tolerate CRLF from hand-written clients and test tools.
      if (line.length > 0 && line[line.length - 1] === CR) line = line.subarray(0, line.length - 1);
      if (line.length > LIMITS.maxLineBytes) {
        return this.fail(events, `line longer than ${LIMITS.maxLineBytes} bytes`);
      }
      this.requestBytes += line.length + 1;
      if (this.requestBytes > LIMITS.maxRequestBytes) {
        return this.fail(events, `request larger than ${LIMITS.maxRequestBytes} bytes`);
      }
      if (line.length === 0) {
        if (this.attributes.size === 0) {
          // An empty line before any attribute: nothing to answer; Postfix never sends it.
          return this.fail(events, 'empty request');
        }
        events.push({ kind: 'request', attributes: this.attributes });
        this.attributes = new Map();
        this.requestBytes = 0;
        continue;
      }
      const equals = line.indexOf(0x3d);
      if (equals <= 0) {
        return this.fail(events, equals === 0 ? 'attribute line with an empty name' : 'line without "="');
      }
      // Values may carry UTF-8 (SMTPUTF8); invalid bytes become U+FFFD and are never echoed.
      const name = line.toString('utf8', 0, equals);
      const value = line.toString('utf8', equals + 1);
      // Last value wins, as in Postfix's own example policy servers; Postfix never repeats one.
      this.attributes.delete(name);
      this.attributes.set(name, value);
    }
    return events;
  }

  private fail(events: DecodeEvent[], problem: string): DecodeEvent[] {
    this.failed = true;
    this.pending = [];
    this.pendingBytes = 0;
    this.attributes = new Map();
    events.push({ kind: 'trouble', problem });
    return events;
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
