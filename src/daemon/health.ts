/**
 * Health that tells the truth: /healthz (and fcrdns_policy_listener_up) send one real request to
 * the policy listener and wait for its answer. A listening socket proves little: the kernel
 * completes a TCP handshake into the backlog even while accept() fails with EMFILE, and a unix
 * socket whose path was removed (a second instance, a cleanup job) still "listens" with nobody
 * able to reach it. Postfix gets no answer in both cases, so the probe must not get one either.
 *
 * The probe carries a token drawn at start; the daemon answers it DUNNO before the request
 * reaches the pipeline, so it writes no decision line and counts as no decision.
 */
import { randomBytes } from 'node:crypto';
import net from 'node:net';
import type { ListenAddress } from '../config/config.js';
import { inNetworks, parseClientIp, type Network } from '../util/ip.js';
import { LIMITS } from '../config/limits.js';
import type { PolicyAttributes } from '../protocol/codec.js';

export interface Health {
  readonly ok: boolean;
  /** A short reason, for the /healthz body and the log. */
  readonly reason: string;
}

/** The attribute a probe carries; Postfix never sends it (unknown attributes are ignored). */
export const PROBE_ATTRIBUTE = 'fcrdns_probe';
const PROBE_ANSWER = { reply: 'DUNNO' } as const;

type Target = { kind: 'tcp'; host: string; port: number } | { kind: 'unix'; path: string };

/** Where to connect to reach a listener: a wildcard address is reached over loopback. */
function targetOf(listen: ListenAddress, port: number | undefined): Target {
  if (listen.kind === 'unix') return listen;
  const host = listen.host === '0.0.0.0' ? '127.0.0.1' : listen.host === '::' ? '::1' : listen.host;
  return { kind: 'tcp', host, port: port ?? listen.port };
}

export class PolicyProbe {
  /** 128 random bits: only this process can write a probe the daemon answers as one. */
  readonly token = randomBytes(16).toString('hex');
  private target: Target | undefined;
  private inFlight: Promise<Health> | undefined;

  /**
   * `listenAllow` is the policy listener's allow-list now; `refused` its count of peers closed for
   * being outside it (the probe's proof that accept() works when it is one of them).
   */
  constructor(
    private readonly listenAllow: () => readonly Network[],
    private readonly refused: () => number,
    private readonly timeoutMs: number = LIMITS.healthProbeTimeoutMs,
  ) {}

  /** The policy listener is bound: probe it from now on. */
  listening(listen: ListenAddress, port: number | undefined): void {
    this.target = targetOf(listen, port);
  }

  /**
   * The request handler, answering this process's probes itself and passing everything else on
   * (whatever else the server hands a handler goes through unchanged).
   */
  answering<Rest extends unknown[], Result>(
    handle: (attributes: PolicyAttributes, ...rest: Rest) => Result,
  ): (attributes: PolicyAttributes, ...rest: Rest) => Result | typeof PROBE_ANSWER {
    const token = this.token;
    return (attributes, ...rest) => (attributes.get(PROBE_ATTRIBUTE) === token ? PROBE_ANSWER : handle(attributes, ...rest));
  }

  /** One round trip to the policy listener; concurrent checks share it (at most one probe connection). */
  check(): Promise<Health> {
    if (this.target === undefined) return Promise.resolve({ ok: false, reason: 'the policy listener is not listening yet' });
    this.inFlight ??= this.probe(this.target).finally(() => {
      this.inFlight = undefined;
    });
    return this.inFlight;
  }

  private probe(target: Target): Promise<Health> {
    const request = `request=smtpd_access_policy\nprotocol_state=RCPT\nclient_address=127.0.0.1\n${PROBE_ATTRIBUTE}=${this.token}\n\n`;
    const where = target.kind === 'unix' ? target.path : target.host.includes(':') ? `[${target.host}]:${target.port}` : `${target.host}:${target.port}`;
    return new Promise<Health>((resolve) => {
      let reply = '';
      let from = '';
      const refusedBefore = this.refused();
      let finished = false;
      let socket: net.Socket;
      const done = (health: Health): void => {
        if (finished) return;
        finished = true;
        clearTimeout(timer);
        socket.destroy();
        resolve(health);
      };
      const timer = setTimeout(() => done({ ok: false, reason: `${where}: no answer within ${this.timeoutMs} ms` }), this.timeoutMs);
      try {
        socket = target.kind === 'unix' ? net.connect(target.path) : net.connect({ host: target.host, port: target.port });
      } catch (error) {
        clearTimeout(timer);
        resolve({ ok: false, reason: `${where}: ${(error as NodeJS.ErrnoException).code ?? String(error)}` });
        return;
      }
      socket.setEncoding('latin1');
      socket.on('connect', () => {
        from = socket.localAddress ?? '';
        socket.write(request);
      });
      socket.on('data', (chunk: string) => {
        reply += chunk;
        if (reply.includes('\n\n')) done(reply === 'action=DUNNO\n\n' ? { ok: true, reason: 'ok' } : { ok: false, reason: `${where}: unexpected answer` });
      });
      socket.on('error', (error: NodeJS.ErrnoException) => done({ ok: false, reason: `${where}: ${error.code ?? error.message}` }));
      socket.on('close', () => done(this.closedUnanswered(from, refusedBefore, where)));
    });
  }

  /**
   * Closed before answering. A TCP probe from an address outside listen_allow is closed by the
   * listener at once, which proves it accepts — if the listener counted a refused peer meanwhile:
   * under EMFILE libuv also accepts and closes pending connections, without the daemon seeing them.
   */
  private closedUnanswered(localAddress: string, refusedBefore: number, where: string): Health {
    const from = parseClientIp(localAddress);
    if (from !== undefined && !inNetworks(from, this.listenAllow()) && this.refused() > refusedBefore) {
      return { ok: true, reason: `ok (the probe's address ${from.text} is outside listen_allow: accepted and closed)` };
    }
    return { ok: false, reason: `${where}: closed without an answer` };
  }
}
