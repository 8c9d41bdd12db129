/**
 * One policy connection: frame its bytes with the codec, hand each request to the handler with
 * the time it arrived, write the replies in request order, and bound what this one peer can
 * hold — requests queued, requests waiting for DNS, unsent reply bytes, bytes of an unfinished
 * request, read time. The server (src/daemon/server.ts) owns the bounds across connections.
 */
import type net from 'node:net';
import { performance } from 'node:perf_hooks';
import type { ClientIp } from '../util/ip.js';
import { LIMITS } from '../config/limits.js';
import type { Logger } from '../log/logger.js';
import { PolicyDecoder, keptAttributes, type PolicyAttributes } from '../protocol/codec.js';
import { encodeReply } from '../protocol/reply.js';

/** A handler's answer: the reply's action text, or trouble (log, then hang up without replying). */
export type HandlerResult = { reply: string } | { trouble: string };

/**
 * The connection a request came on, as its handler sees it: the connection's logger, and a slot
 * for what the handler keeps between that connection's requests (the daemon keeps the message
 * being received: Postfix sends one message's requests over one connection, POSTFIX-FACTS 2).
 */
export interface RequestContext<State> {
  readonly log: Logger;
  state: State | undefined;
  /** True once no more requests can come on this connection (the peer shut down, or it closed). */
  readonly ended: boolean;
  /** Requests of this connection handed to the handler and not answered yet (0 when absent). */
  readonly waiting?: number;
  /**
   * When the request being handed to the handler was read (performance.now()): deadlines run
   * from it, not from when the handler got to it. Read it when the handler is called.
   */
  readonly arrivedAt?: number;
}

/**
 * Turns one request into its answer: at once when it can (every answer cached), or later. An
 * answer given at once is written without a promise round trip.
 */
export type RequestHandler<State = unknown> = (
  attributes: PolicyAttributes,
  connection: RequestContext<State>,
) => HandlerResult | Promise<HandlerResult>;

/** What a connection needs from its server. */
export interface ConnectionHost<State> {
  readonly requestReadTimeoutMs: number;
  readonly stats: { protocolErrors: number };
  handle(attributes: PolicyAttributes, connection: RequestContext<State>): HandlerResult | Promise<HandlerResult>;
  connectionEnded(connection: RequestContext<State>): void;
  touch(connection: Connection<State>): void;
  /** The bytes this connection holds for an unfinished request changed by `delta`. */
  heldChanged(connection: Connection<State>, delta: number): void;
  forget(connection: Connection<State>): void;
}

type Slot = { result?: HandlerResult };

/** A request read but not yet handed to the handler: its connection has maxWaitingPerConnection waiting. */
type Deferred = { slot: Slot; attributes: PolicyAttributes; arrivedAt: number; bytes: number };

/** Encoded replies, by action text: most replies are DUNNO, and a client's failure reply repeats. */
const encodedReplies = new Map<string, Buffer>();
const ENCODED_REPLIES_KEPT = 1024;

/** The reply's bytes; a Buffer may be written to many sockets at once, since nothing changes it. */
function replyBytes(action: string): Buffer {
  let bytes = encodedReplies.get(action);
  if (bytes === undefined) {
    bytes = encodeReply(action);
    if (encodedReplies.size >= ENCODED_REPLIES_KEPT) encodedReplies.clear();
    encodedReplies.set(action, bytes);
  }
  return bytes;
}

export class Connection<State> implements RequestContext<State> {
  private readonly decoder = new PolicyDecoder();
  private readonly queue: Slot[] = [];
  /**
   * Requests read while this connection had maxWaitingPerConnection waiting, as copies of their
   * own bytes; reading goes on (their deadlines run from their arrival) until they hold
   * maxDeferredBytesPerConnection, counted with the bytes of unfinished requests.
   */
  private deferred: Deferred[] = [];
  private deferredBytes = 0;
  private readTimer: NodeJS.Timeout | undefined;
  private closing = false;
  private draining = false;
  state: State | undefined = undefined;
  ended = false;
  waiting = 0;
  arrivedAt = 0;
  /** Bytes of an unfinished request counted in the server's total. */
  heldCounted = 0;
  /** When this connection last sent something (performance.now()); the server's idle sweep reads it. */
  lastActive = 0;

  constructor(
    readonly socket: net.Socket,
    readonly log: Logger,
    private readonly server: ConnectionHost<State>,
    /** The TCP peer's address (undefined on a unix socket): a reload may revoke it. */
    readonly peer: ClientIp | undefined,
  ) {
    socket.setNoDelay(true);
    socket.on('data', (chunk: Buffer) => this.onData(chunk));
    socket.on('drain', () => this.maybeResume());
    // The server is half-open capable: a peer that sends its requests and shuts down its
    // sending side (printf … | nc) still gets every answer before the connection closes.
    socket.on('end', () => {
      this.end();
      this.drain();
    });
    socket.on('error', (error: NodeJS.ErrnoException) => {
      this.log.debug({ err_code: error.code }, 'connection error');
    });
    socket.on('close', () => this.onClose());
  }

  get busy(): boolean {
    return this.queue.length > 0;
  }

  /** Close once in-flight requests are answered (graceful stop). */
  drain(): void {
    this.draining = true;
    this.clearReadTimer();
    if (this.queue.length === 0) this.socket.end();
  }

  destroy(): void {
    this.closing = true;
    this.socket.destroy();
  }

  /**
   * Drop the unfinished request and close after the replies already due, without a reply to it
   * (the server's total of held bytes is over its bound, and this connection holds the most).
   */
  cutOff(problem: string): void {
    this.decoder.discard();
    this.server.heldChanged(this, -this.heldCounted);
    // Hang up where the first request not handed over yet stands: no reply to it or after it.
    const first = this.deferred[0];
    if (first) first.slot.result = { trouble: problem };
    else this.queue.push({ result: { trouble: problem } });
    this.deferred = [];
    this.deferredBytes = 0;
    this.flush();
  }

  private onData(chunk: Buffer): void {
    if (this.closing || this.draining) return;
    const arrivedAt = performance.now();
    this.server.touch(this);
    const events = this.decoder.push(chunk);
    for (const event of events) {
      if (event.kind === 'trouble') {
        this.queue.push({ result: { trouble: event.problem } });
        break;
      }
      const slot: Slot = {};
      this.queue.push(slot);
      if (this.waiting >= LIMITS.maxWaitingPerConnection || this.deferred.length > 0) this.defer(slot, event.attributes, arrivedAt);
      else this.start(slot, event.attributes, arrivedAt);
    }
    this.countHeld();
    this.armReadTimer();
    this.flush();
    if (this.queue.length >= LIMITS.maxPipelinedRequests || this.deferredBytes >= LIMITS.maxDeferredBytesPerConnection) this.socket.pause();
  }

  private defer(slot: Slot, attributes: PolicyAttributes, arrivedAt: number): void {
    const kept = keptAttributes(attributes);
    this.deferred.push({ slot, attributes: kept.attributes, arrivedAt, bytes: kept.bytes });
    this.deferredBytes += kept.bytes;
  }

  /** Tell the server what this connection holds now: an unfinished request's bytes and deferred requests'. */
  private countHeld(): void {
    const held = this.decoder.heldBytes + this.deferredBytes;
    if (held !== this.heldCounted) this.server.heldChanged(this, held - this.heldCounted);
  }

  /** Hand one request to the handler; its slot is filled now or when its promise settles. */
  private start(slot: Slot, attributes: PolicyAttributes, arrivedAt: number): void {
    this.arrivedAt = arrivedAt;
    const answer = this.server.handle(attributes, this);
    if (!(answer instanceof Promise)) {
      slot.result = answer;
      return;
    }
    this.waiting++;
    // One reaction for both outcomes (not catch() then then(): a promise fewer per waiting request).
    const settled = (result: HandlerResult): void => {
      this.waiting--;
      slot.result = result;
      this.startDeferred();
      this.flush();
    };
    answer.then(settled, (error: unknown) => settled(this.failed(error)));
  }

  /** Requests read while the connection was at its waiting bound, in order, as places free up. */
  private startDeferred(): void {
    let next = 0;
    while (next < this.deferred.length && this.waiting < LIMITS.maxWaitingPerConnection && !this.closing) {
      const { slot, attributes, arrivedAt, bytes } = this.deferred[next] as Deferred;
      next++;
      this.deferredBytes -= bytes;
      this.start(slot, attributes, arrivedAt);
    }
    if (next === 0) return;
    this.deferred = this.deferred.slice(next);
    this.countHeld();
  }

  private failed(error: unknown): HandlerResult {
    this.log.error({ err: error }, 'request handler failed');
    return { trouble: 'internal error' };
  }

  /** Write every answered reply at the head of the queue, in request order. */
  private flush(): void {
    while (!this.closing) {
      const head = this.queue[0];
      if (!head?.result) break;
      this.queue.shift();
      if ('trouble' in head.result) {
        // SMTPD_POLICY_README: "in case of trouble the policy server must not send a reply";
        // Postfix then applies its default_action (POSTFIX-FACTS 3, 4).
        this.server.stats.protocolErrors++;
        this.log.warn({ problem: head.result.trouble }, 'closing connection after a broken request, without reply');
        this.closing = true;
        this.deferred = [];
        this.deferredBytes = 0;
        this.clearReadTimer();
        this.socket.end(() => this.socket.destroy());
        return;
      }
      this.socket.write(replyBytes(head.result.reply));
    }
    if (this.draining && this.queue.length === 0) this.socket.end();
    this.maybeResume();
  }

  private maybeResume(): void {
    if (
      this.socket.isPaused() &&
      !this.closing &&
      this.deferredBytes < LIMITS.maxDeferredBytesPerConnection &&
      this.queue.length < LIMITS.maxPipelinedRequests &&
      this.socket.writableLength < LIMITS.maxPendingReplyBytes
    ) {
      this.socket.resume();
    } else if (this.socket.writableLength >= LIMITS.maxPendingReplyBytes) {
      // A peer that sends but never reads: stop reading until it catches up.
      this.socket.pause();
    }
  }

  /** A request that starts must finish within requestReadTimeoutMs (a trickling sender is cut off). */
  private armReadTimer(): void {
    if (!this.decoder.hasPartialRequest) {
      this.clearReadTimer();
      return;
    }
    if (this.readTimer) return;
    this.readTimer = setTimeout(() => {
      this.readTimer = undefined;
      this.queue.push({ result: { trouble: `request not completed within ${this.server.requestReadTimeoutMs} ms` } });
      this.flush();
    }, this.server.requestReadTimeoutMs);
    this.readTimer.unref();
  }

  private clearReadTimer(): void {
    if (this.readTimer) clearTimeout(this.readTimer);
    this.readTimer = undefined;
  }

  /** Called by the idle sweep once nothing has arrived for idleTimeoutMs. */
  closeIfIdle(): void {
    if (this.queue.length > 0) return; // waiting on DNS is not idleness; lookups have their own deadline
    this.log.info('closing idle connection');
    this.destroy();
  }

  private onClose(): void {
    this.closing = true;
    this.deferred = [];
    this.deferredBytes = 0;
    this.clearReadTimer();
    this.decoder.discard();
    if (this.heldCounted !== 0) this.server.heldChanged(this, -this.heldCounted);
    this.end();
    this.server.forget(this);
  }

  /** No more requests can come: tell the handler, once. */
  private end(): void {
    if (this.ended) return;
    this.ended = true;
    this.server.connectionEnded(this);
  }
}
