/**
 * A UDP proxy that delays every answer from the authoritative server by DELAY ms, as recursion
 * to remote servers does. Usage: delay-proxy.ts LISTEN_PORT UPSTREAM_PORT DELAY_MS.
 * Queries are matched to answers by DNS ID (unbound randomises them; collisions at a few
 * hundred outstanding queries are rare and only cost a retry).
 */
import dgram from 'node:dgram';

const [listenPort, upstreamPort, delayMs] = process.argv.slice(2).map(Number);
const front = dgram.createSocket('udp4');
const back = dgram.createSocket('udp4');
const pending = new Map<number, { port: number; address: string }>();

front.on('message', (message, remote) => {
  if (message.length < 12) return;
  pending.set(message.readUInt16BE(0), { port: remote.port, address: remote.address });
  back.send(message, upstreamPort, '127.0.0.1');
});
back.on('message', (message) => {
  if (message.length < 12) return;
  const id = message.readUInt16BE(0);
  const client = pending.get(id);
  if (!client) return;
  pending.delete(id);
  setTimeout(() => front.send(message, client.port, client.address), delayMs);
});
back.bind(0, '127.0.0.1', () => {
  front.bind(listenPort, '127.0.0.1', () => process.stdout.write('ready\n'));
});
