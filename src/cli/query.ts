/**
 * `fcrdns-policyd query [NAME=VALUE...]`: send one policy request to a running daemon, the way
 * Postfix would (SMTPD_POLICY_README), and print its answer. It exists so that a first request,
 * a health check and a script need nothing but the program itself: no netcat (whose flags differ
 * between the two netcats Debian ships), no curl, and unix sockets work like TCP.
 */
import net from 'node:net';
import type { ListenAddress } from '../config/config.js';

/** sysexits(3): the daemon could not be reached, did not answer in time, answered garbage. */
export const QUERY_EXIT = { answered: 0, usage: 64, unavailable: 69, software: 70, timeout: 75 } as const;

/** How long to wait for the whole exchange: Postfix's own policy timeout is 100 s, its per-service advice 10 s. */
export const QUERY_TIMEOUT_MS = 10_000;

/** Longest reply read: the daemon's replies are one short line; more means it is not this daemon. */
const MAX_REPLY_BYTES = 4096;

/** Attributes sent unless the command line sets them: a recipient-stage request, as Postfix sends by default. */
const DEFAULT_ATTRIBUTES: ReadonlyArray<readonly [string, string]> = [
  ['request', 'smtpd_access_policy'],
  ['protocol_state', 'RCPT'],
  ['protocol_name', 'ESMTP'],
];

export type QueryRequest = { ok: true; text: string } | { ok: false; problem: string };

/** The request's bytes from NAME=VALUE arguments, or why they cannot make one. */
export function buildQuery(pairs: readonly string[]): QueryRequest {
  const attributes = new Map<string, string>();
  for (const pair of pairs) {
    const equals = pair.indexOf('=');
    if (equals <= 0) return { ok: false, problem: `not NAME=VALUE: ${JSON.stringify(pair)}` };
    // An LF would end the attribute (or the request) early: the protocol has no escaping.
    if (/[\r\n]/.test(pair)) return { ok: false, problem: `a line break in ${JSON.stringify(pair)}` };
    attributes.set(pair.slice(0, equals), pair.slice(equals + 1));
  }
  if (!attributes.has('client_address')) return { ok: false, problem: 'client_address=IP is needed (the SMTP client to judge)' };
  for (const [name, value] of DEFAULT_ATTRIBUTES) if (!attributes.has(name)) attributes.set(name, value);
  return { ok: true, text: `${[...attributes].map(([name, value]) => `${name}=${value}`).join('\n')}\n\n` };
}

/** Where to connect for a listen address: a wildcard listener is reached on loopback. */
export function connectTarget(listen: ListenAddress): net.NetConnectOpts {
  if (listen.kind === 'unix') return { path: listen.path };
  const host = listen.host === '0.0.0.0' || listen.host === '' ? '127.0.0.1' : listen.host === '::' ? '::1' : listen.host;
  return { host, port: listen.port };
}

export type QueryOutcome =
  | { kind: 'answered'; action: string }
  | { kind: 'unavailable'; problem: string }
  | { kind: 'timeout' }
  | { kind: 'garbage'; problem: string };

/** Send one request and wait for its reply (`action=…` and an empty line). */
export function sendQuery(target: net.NetConnectOpts, request: string, timeoutMs = QUERY_TIMEOUT_MS): Promise<QueryOutcome> {
  return new Promise((resolve) => {
    const socket = net.connect(target);
    let received = '';
    let settled = false;
    const finish = (outcome: QueryOutcome) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      socket.destroy();
      resolve(outcome);
    };
    const timer = setTimeout(() => finish({ kind: 'timeout' }), timeoutMs);
    socket.on('connect', () => socket.write(request));
    socket.on('error', (error: NodeJS.ErrnoException) => finish({ kind: 'unavailable', problem: error.code ?? error.message }));
    // A daemon that hangs up without a reply is in "trouble" (SMTPD_POLICY_README): the request was refused.
    socket.on('close', () => finish({ kind: 'unavailable', problem: 'the daemon closed the connection without a reply (see its log)' }));
    socket.on('data', (chunk: Buffer) => {
      received += chunk.toString('latin1');
      if (received.length > MAX_REPLY_BYTES) return finish({ kind: 'garbage', problem: 'a reply longer than any this daemon writes' });
      const end = received.indexOf('\n\n');
      if (end !== -1) finish(parseReply(received.slice(0, end)));
    });
  });
}

/** The reply's action, or why it is not one (printed escaped: it came from a peer). */
function parseReply(text: string): QueryOutcome {
  const match = /^action=([\x20-\x7e]+)$/.exec(text);
  return match?.[1] ? { kind: 'answered', action: match[1] } : { kind: 'garbage', problem: `unexpected reply ${JSON.stringify(text.slice(0, 200))}` };
}

/** The command: print `action=…` and exit 0, or say why not with a sysexits code. */
export async function runQuery(listen: ListenAddress, pairs: readonly string[], io: { out(text: string): void; err(text: string): void }): Promise<number> {
  const request = buildQuery(pairs);
  if (!request.ok) {
    io.err(`fcrdns-policyd: query: ${request.problem}\n`);
    return QUERY_EXIT.usage;
  }
  const target = connectTarget(listen);
  const where = listen.kind === 'unix' ? listen.path : `${'host' in target ? target.host : ''}:${listen.port}`;
  const outcome = await sendQuery(target, request.text);
  switch (outcome.kind) {
    case 'answered':
      io.out(`action=${outcome.action}\n`);
      return QUERY_EXIT.answered;
    case 'unavailable':
      io.err(`fcrdns-policyd: query: no answer from ${where}: ${outcome.problem}\n`);
      return QUERY_EXIT.unavailable;
    case 'timeout':
      io.err(`fcrdns-policyd: query: no answer from ${where} within ${QUERY_TIMEOUT_MS / 1000} s\n`);
      return QUERY_EXIT.timeout;
    case 'garbage':
      io.err(`fcrdns-policyd: query: ${where}: ${outcome.problem}\n`);
      return QUERY_EXIT.software;
  }
}
