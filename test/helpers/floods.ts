/** Floods on the policy port for the attack tests (issue 24): silent zones, pipelined and partial requests. */
import net from 'node:net';
import { parseClientIp, reverseName } from '../../src/util/ip.js';
import { LIMITS } from '../../src/config/limits.js';
import { startBundle, type LogLine, type RunningDaemon } from './bundle.js';
import { startHostileDns } from './hostile-dns.js';
import { PolicyClient, policyRequest } from './policy-client.js';

export const RSS_BUDGET_MB = 150;
export const GOOD = '2001:db8:bad:1::25';
export const ZONE = 'hostile.example';
export const DNS_TIMEOUT_MS = 1000;
/** dns_timeout × dns_tries + the daemon's margin (SECURITY.md "DNS time per request"). */
export const BUDGET_MS = DNS_TIMEOUT_MS + LIMITS.dnsDeadlineMarginMs;

export type Teardown = { teardown(fn: () => unknown): void };

export function config(dnsPort: number, extra = '', dnsTimeoutMs = DNS_TIMEOUT_MS): string {
  return ['listen = 127.0.0.1:0', 'mode = strict', `dns_servers = 127.0.0.1:${dnsPort}`, `dns_timeout = ${dnsTimeoutMs}ms`, 'dns_tries = 1', extra, ''].join('\n');
}

/** The daemon against a zone that never answers, but for one good client. */
export async function silentZoneDaemon(t: Teardown, extra = '', dnsTimeoutMs = DNS_TIMEOUT_MS): Promise<RunningDaemon> {
  const dns = await startHostileDns({ forwardZone: ZONE, style: 'silent', good: { reverseName: reverseName(parseClientIp(GOOD)!), address: GOOD } });
  t.teardown(() => dns.stop());
  const daemon = await startBundle(config(dns.port, extra, dnsTimeoutMs));
  t.teardown(() => daemon.stop());
  return daemon;
}

export function rawConnect(port: number): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const socket = net.connect(port, '127.0.0.1', () => resolve(socket));
    socket.once('error', reject);
  });
}

/** Connections that each write `bytes` and then say nothing; resolves once all are written, with how many the daemon closed so far. */
export async function partialFlood(t: Teardown, port: number, connections: number, bytes: Buffer): Promise<{ closed: () => number; replied: () => number }> {
  const sockets = await Promise.all(Array.from({ length: connections }, () => rawConnect(port)));
  t.teardown(() => sockets.forEach((socket) => socket.destroy()));
  let closed = 0;
  let replied = 0;
  await Promise.all(
    sockets.map((socket) => {
      socket.on('error', () => undefined);
      socket.on('data', () => replied++);
      socket.on('close', () => closed++);
      return new Promise<void>((resolve) => socket.write(bytes, () => resolve()));
    }),
  );
  return { closed: () => closed, replied: () => replied };
}

/** `connections` connections that each pipeline `perConnection` requests for distinct silent clients; replies by code. */
export async function pipelinedFlood(port: number, connections: number, perConnection: number, pad = 0, first = 0x1000): Promise<Map<string, number>> {
  const padding = Object.fromEntries(Array.from({ length: pad }, (_, i) => [`x${i}`, '']));
  const clients = await Promise.all(Array.from({ length: connections }, () => PolicyClient.connect({ port })));
  const replies = new Map<string, number>();
  const count = (kind: string) => replies.set(kind, (replies.get(kind) ?? 0) + 1);
  await Promise.all(
    clients.map(async (client, c) => {
      const batch = Array.from({ length: perConnection }, (_, i) =>
        policyRequest({ ...padding, client_address: `2001:db8:bad::${(first + c * perConnection + i).toString(16)}`, helo_name: `h.${ZONE}` }),
      ).join('');
      await client.send(batch);
      for (let i = 0; i < perConnection; i++) {
        const reply = await client.reply(30_000).catch(() => 'closed');
        count(reply.slice(0, 6) === 'closed' ? 'closed' : reply.slice(0, 3));
        if (reply === 'closed') break;
      }
      client.close();
    }),
  );
  return replies;
}

export const decisions = (daemon: RunningDaemon): LogLine[] => daemon.lines.filter((line) => line.msg === 'decision');
export const ptrCode = (line: LogLine): string | undefined => (line.ptr as { code?: string } | undefined)?.code;

