/**
 * Sockets: accept (TCP or unix), hand each connection to src/daemon/connection.ts, and bound what all
 * connections hold together (connections, bytes of unfinished requests) and who may hold them
 * (listen_allow, also on reload). Knows nothing about DNS or policy: a handler turns attributes
 * into a reply.
 */
import { lstatSync, unlinkSync } from 'node:fs';
import net from 'node:net';
import { performance } from 'node:perf_hooks';
import type { ListenAddress } from '../config/config.js';
import { Connection, type ConnectionHost, type HandlerResult, type RequestContext, type RequestHandler } from './connection.js';
import { inNetworks, parseClientIp, type ClientIp, type Network } from '../util/ip.js';
import { LIMITS } from '../config/limits.js';
import type { Logger } from '../log/logger.js';
import type { PolicyAttributes } from '../protocol/codec.js';
import { checkSocketPath, moveIntoPlace, removeIfOurs, temporarySocketPath, type BoundSocket } from './unix-socket.js';

export type { HandlerResult, RequestContext, RequestHandler } from './connection.js';

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
  /** Bytes held for unfinished requests, all connections together (a gauge; absent before the listener starts). */
  heldBytes?: number;
  /** Connections cut off because the held bytes passed LIMITS.maxHeldRequestBytesTotal. */
  heldCut?: number;
  /** Connections closed on reload because their peer left listen_allow. */
  revoked?: number;
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

let connectionCounter = 0;

/** The state shared by a server's connections. */
class ServerCore<State> implements ConnectionHost<State> {
  readonly stats: Required<ServerStats> = { open: 0, accepted: 0, refused: 0, evicted: 0, protocolErrors: 0, heldBytes: 0, heldCut: 0, revoked: 0 };
  /** Ordered by last activity: the first entry is the longest idle. */
  private readonly connections = new Map<Connection<State>, true>();
  /** Connections holding bytes of an unfinished request. */
  private readonly holders = new Set<Connection<State>>();
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
    let ip: ClientIp | undefined;
    if (isTcp) {
      ip = parseClientIp(peer);
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
      ip,
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
   * Count a connection's held bytes in the total; past LIMITS.maxHeldRequestBytesTotal, cut off
   * the connections that hold the most until it is under again. A peer that opens many
   * connections and never finishes a request loses its own largest first; Postfix's requests
   * arrive whole and hold nothing, so its connections are never the largest.
   */
  heldChanged(connection: Connection<State>, delta: number): void {
    connection.heldCounted += delta;
    this.stats.heldBytes += delta;
    if (connection.heldCounted > 0) this.holders.add(connection);
    else this.holders.delete(connection);
    while (this.stats.heldBytes > LIMITS.maxHeldRequestBytesTotal) {
      let largest: Connection<State> | undefined;
      for (const holder of this.holders) if (!largest || holder.heldCounted > largest.heldCounted) largest = holder;
      if (!largest) break;
      this.stats.heldCut++;
      largest.log.warn(
        { held_bytes: this.stats.heldBytes, limit: LIMITS.maxHeldRequestBytesTotal, cut: this.stats.heldCut },
        'unfinished requests hold too many bytes in all: cutting off the connection that holds the most',
      );
      largest.cutOff(`unfinished requests hold more than ${LIMITS.maxHeldRequestBytesTotal} bytes in all; this connection held the most`);
    }
  }

  /** Close connections whose TCP peer is no longer in listen_allow (a reload narrowed it); returns how many. */
  revokeOutside(listenAllow: readonly Network[]): number {
    let closed = 0;
    for (const connection of [...this.connections.keys()]) {
      if (connection.peer && !inNetworks(connection.peer, listenAllow)) {
        closed++;
        connection.destroy();
      }
    }
    this.stats.revoked += closed;
    return closed;
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
    this.holders.delete(connection);
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

/** A leftover of this process id's temporary socket name (a crashed run): only a socket is removed. */
function removeStaleTemporary(path: string): void {
  try {
    if (lstatSync(path).isSocket()) unlinkSync(path);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
  }
}

/** Bind the listener; for a unix socket, the path it ends up on and what identifies it. */
async function bind(server: net.Server, listen: ListenAddress, listenMode: number): Promise<BoundSocket | undefined> {
  const listening = (target: string | { host: string; port: number }): Promise<void> =>
    new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(target, () => {
        server.off('error', reject);
        resolve();
      });
    });
  if (listen.kind !== 'unix') {
    await listening({ host: listen.host, port: listen.port });
    return undefined;
  }
  await checkSocketPath(listen.path);
  const temporary = temporarySocketPath(listen.path);
  removeStaleTemporary(temporary);
  await listening(temporary);
  try {
    return moveIntoPlace(temporary, listen.path, listenMode);
  } catch (error) {
    server.close();
    throw error;
  }
}

/** Start listening; resolves once bound. */
export async function startPolicyServer<State>(options: ServerOptions<State>): Promise<PolicyServer> {
  const core = new ServerCore<State>(options);
  const isTcp = options.listen.kind === 'tcp';
  const server = net.createServer({ allowHalfOpen: true }, (socket) => core.accept(socket, isTcp));
  server.maxConnections = LIMITS.maxConnectionsCeiling;
  const listen = options.listen;
  const ours = await bind(server, listen, options.listenMode);
  server.on('error', (error) => options.logger.error({ err: error }, 'listener error'));
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
      const closed = core.revokeOutside(limits.listenAllow);
      if (closed > 0) options.logger.warn({ closed }, 'closed connections from peers no longer in listen_allow');
    },
    async close() {
      const stopped = new Promise<void>((resolve) => server.close(() => resolve()));
      // Unreachable from now on, but only if the path is still ours (not a newer instance's).
      if (ours && listen.kind === 'unix') removeIfOurs(listen.path, ours);
      clearInterval(sweep);
      await core.drainAll();
      await stopped;
    },
  };
}
