/**
 * Sockets: accept (TCP or unix), frame with the codec, answer each connection's requests in
 * order, bound what one peer can hold (connections, pipelined requests, unsent bytes, read
 * time), and close. Knows nothing about DNS or policy: a handler turns attributes into a reply.
 */
import { chmodSync, lstatSync, unlinkSync } from 'node:fs';
import net from 'node:net';
import { performance } from 'node:perf_hooks';
import type { ListenAddress } from './config.js';
import { inNetworks, parseClientIp, type Network } from './ip.js';
import { LIMITS } from './limits.js';
import type { Logger } from './log.js';
import { PolicyDecoder, encodeReply, type PolicyAttributes } from './protocol.js';

/** A handler's answer: the reply's action text, or trouble (log, then hang up without replying). */
export type HandlerResult = { reply: string } | { trouble: string };

/**
 * Turns one request into its answer: at once when it can (every answer cached), or later. An
 * answer given at once is written without a promise round trip.
 */
export type RequestHandler<State = unknown> = (
  attributes: PolicyAttributes,
  connection: RequestContext<State>,
) => HandlerResult | Promise<HandlerResult>;

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
}

export interface ServerOptions<State = unknown> {
  listen: ListenAddress;
  listenMode: number;
  listenAllow: readonly Network[];
  maxConnections: number;
  logger: Logger;
  handle: RequestHandler<State>;
  /** Called once per connection when no more requests can come on it (its replies may still be due). */
  connectionEnded?: (connection: RequestContext<State>) => void;
  /** Overridable for tests; defaults from LIMITS. */
  idleTimeoutMs?: number;
  requestReadTimeoutMs?: number;
}

export interface ServerStats {
  open: number;
  accepted: number;
  refused: number;
  evicted: number;
  protocolErrors: number;
}

export interface PolicyServer {
  /** `host:port` or the unix socket path. */
  readonly address: string;
  readonly port: number | undefined;
  readonly stats: ServerStats;
  /** Update the limits that can change without re-binding (on reload). */
  updateLimits(limits: { listenAllow: readonly Network[]; maxConnections: number }): void;
  /** Stop accepting, answer what is in flight, close every connection. */
  close(): Promise<void>;
}

type Slot = { result?: HandlerResult };

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

let connectionCounter = 0;

class Connection<State> implements RequestContext<State> {
  private readonly decoder = new PolicyDecoder();
  private readonly queue: Slot[] = [];
  private readTimer: NodeJS.Timeout | undefined;
  private closing = false;
  private draining = false;
  state: State | undefined = undefined;
  ended = false;
  /** When this connection last sent something (performance.now()); the server's idle sweep reads it. */
  lastActive = 0;

  constructor(
    readonly socket: net.Socket,
    readonly log: Logger,
    private readonly server: ServerCore<State>,
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

  private onData(chunk: Buffer): void {
    if (this.closing || this.draining) return;
    this.server.touch(this);
    for (const event of this.decoder.push(chunk)) {
      if (event.kind === 'trouble') {
        this.queue.push({ result: { trouble: event.problem } });
        break;
      }
      const slot: Slot = {};
      this.queue.push(slot);
      const answer = this.server.handle(event.attributes, this);
      if (answer instanceof Promise) {
        answer
          .catch((error: unknown) => this.failed(error))
          .then((result) => {
            slot.result = result;
            this.flush();
          });
      } else {
        slot.result = answer;
      }
    }
    this.armReadTimer();
    this.flush();
    if (this.queue.length >= LIMITS.maxPipelinedRequests) this.socket.pause();
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
    this.clearReadTimer();
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

/** The state shared by a server's connections. */
class ServerCore<State> {
  readonly stats: ServerStats = { open: 0, accepted: 0, refused: 0, evicted: 0, protocolErrors: 0 };
  /** Ordered by last activity: the first entry is the longest idle. */
  private readonly connections = new Map<Connection<State>, true>();
  private closed: (() => void) | undefined;
  listenAllow: readonly Network[];
  maxConnections: number;
  readonly idleTimeoutMs: number;
  readonly requestReadTimeoutMs: number;

  constructor(private readonly options: ServerOptions<State>) {
    this.listenAllow = options.listenAllow;
    this.maxConnections = options.maxConnections;
    this.idleTimeoutMs = options.idleTimeoutMs ?? LIMITS.idleTimeoutMs;
    this.requestReadTimeoutMs = options.requestReadTimeoutMs ?? LIMITS.requestReadTimeoutMs;
  }

  /** The handler's answer; a handler that throws gets the same treatment as one whose promise rejects. */
  handle(attributes: PolicyAttributes, connection: RequestContext<State>): HandlerResult | Promise<HandlerResult> {
    try {
      return this.options.handle(attributes, connection);
    } catch (error) {
      return Promise.reject(error);
    }
  }

  connectionEnded(connection: RequestContext<State>): void {
    try {
      this.options.connectionEnded?.(connection);
    } catch (error) {
      connection.log.error({ err: error }, 'connection end handler failed');
    }
  }

  accept(socket: net.Socket, isTcp: boolean): void {
    const log = this.options.logger;
    if (this.closed) {
      socket.destroy();
      return;
    }
    const peer = socket.remoteAddress ?? '';
    if (isTcp) {
      const ip = parseClientIp(peer);
      if (!ip || !inNetworks(ip, this.listenAllow)) {
        this.stats.refused++;
        log.warn({ peer: peer.slice(0, 64) }, 'connection from a peer outside listen_allow closed');
        socket.destroy();
        return;
      }
    }
    if (this.connections.size >= this.maxConnections) this.evictOne();
    const id = ++connectionCounter;
    const connection = new Connection<State>(
      socket,
      log.child({ conn: id, ...(isTcp ? { peer: `${peer}:${socket.remotePort ?? 0}` } : {}) }),
      this,
    );
    this.touch(connection);
    this.stats.accepted++;
    this.stats.open = this.connections.size;
  }

  /**
   * At the cap, close the longest-idle connection to make room: Postfix reconnects when it
   * needs to (POSTFIX-FACTS 2), whereas refusing the newcomer would stall a live SMTP session.
   */
  private evictOne(): void {
    let victim: Connection<State> | undefined;
    for (const connection of this.connections.keys()) {
      if (!connection.busy) {
        victim = connection;
        break;
      }
      victim ??= connection;
    }
    if (!victim) return;
    this.stats.evicted++;
    victim.log.warn({ max_connections: this.maxConnections }, 'connection limit reached: closing the longest-idle connection');
    this.connections.delete(victim);
    victim.destroy();
  }

  touch(connection: Connection<State>): void {
    connection.lastActive = performance.now();
    this.connections.delete(connection);
    this.connections.set(connection, true);
  }

  /**
   * Close connections that sent nothing for idleTimeoutMs. One sweep timer for all connections
   * instead of a socket timeout each: Node re-arms a socket's timer on every read and write,
   * which cost more per request than the rest of the server. The connections are kept in order
   * of activity, so a sweep stops at the first recent one.
   */
  closeIdle(): void {
    const idleSince = performance.now() - this.idleTimeoutMs;
    for (const connection of this.connections.keys()) {
      if (connection.lastActive > idleSince) break;
      connection.closeIfIdle();
    }
  }

  forget(connection: Connection<State>): void {
    this.connections.delete(connection);
    this.stats.open = this.connections.size;
    if (this.closed && this.connections.size === 0) this.closed();
  }

  drainAll(): Promise<void> {
    return new Promise((resolve) => {
      this.closed = resolve;
      if (this.connections.size === 0) resolve();
      for (const connection of this.connections.keys()) connection.drain();
    });
  }
}

/** Remove a stale unix socket left by a previous run; refuse to remove anything else. */
function removeStaleSocket(path: string): void {
  try {
    if (lstatSync(path).isSocket()) unlinkSync(path);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
  }
}

/** Start listening; resolves once bound. */
export async function startPolicyServer<State>(options: ServerOptions<State>): Promise<PolicyServer> {
  const core = new ServerCore<State>(options);
  const isTcp = options.listen.kind === 'tcp';
  const server = net.createServer({ allowHalfOpen: true }, (socket) => core.accept(socket, isTcp));
  server.maxConnections = LIMITS.maxConnectionsCeiling;
  server.on('error', (error) => options.logger.error({ err: error }, 'listener error'));
  const listen = options.listen;
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    if (listen.kind === 'unix') {
      removeStaleSocket(listen.path);
      server.listen(listen.path, () => resolve());
    } else {
      server.listen({ host: listen.host, port: listen.port }, () => resolve());
    }
  });
  if (listen.kind === 'unix') chmodSync(listen.path, options.listenMode);
  // Idle connections close between idleTimeoutMs and idleTimeoutMs plus a tenth of it (at most 1 s).
  const sweep = setInterval(() => core.closeIdle(), Math.min(1000, Math.max(10, core.idleTimeoutMs / 10)));
  sweep.unref();
  const bound = server.address();
  const port = typeof bound === 'object' && bound !== null ? bound.port : undefined;
  const address =
    listen.kind === 'unix' ? listen.path : listen.host.includes(':') ? `[${listen.host}]:${port}` : `${listen.host}:${port}`;
  return {
    address,
    port,
    stats: core.stats,
    updateLimits(limits) {
      core.listenAllow = limits.listenAllow;
      core.maxConnections = limits.maxConnections;
    },
    async close() {
      const stopped = new Promise<void>((resolve) => server.close(() => resolve()));
      clearInterval(sweep);
      await core.drainAll();
      await stopped;
    },
  };
}
