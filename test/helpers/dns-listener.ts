/**
 * A hand-written DNS server's transport for the tests' own servers (hostile-dns.ts, fanout-dns.ts):
 * UDP and TCP (two-byte length prefix, RFC 1035 §4.2.2) on one loopback port, each query handed to
 * `respond`, which may answer with a message or stay silent.
 */
import dgram from 'node:dgram';
import net from 'node:net';

export type Respond = (query: Buffer, udp: boolean) => Buffer | undefined;

export async function listenDns(respond: Respond): Promise<{ port: number; stop: () => Promise<void> }> {
  const sockets = new Set<net.Socket>();
  const tcp = net.createServer((socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    socket.on('error', () => undefined);
    let pending = Buffer.alloc(0);
    socket.on('data', (chunk: Buffer) => {
      pending = Buffer.concat([pending, chunk]);
      while (pending.length >= 2 && pending.length >= 2 + pending.readUInt16BE(0)) {
        const length = pending.readUInt16BE(0);
        const reply = respond(pending.subarray(2, 2 + length), false);
        pending = pending.subarray(2 + length);
        if (!reply) continue;
        const prefix = Buffer.alloc(2);
        prefix.writeUInt16BE(reply.length);
        socket.write(Buffer.concat([prefix, reply]));
      }
    });
  });
  await new Promise<void>((resolve) => tcp.listen(0, '127.0.0.1', resolve));
  const address = tcp.address();
  const port = typeof address === 'object' && address ? address.port : 0;
  const udp = dgram.createSocket('udp4');
  udp.on('message', (message, peer) => {
    const reply = respond(message, true);
    if (reply) udp.send(reply, peer.port, peer.address);
  });
  await new Promise<void>((resolve) => udp.bind(port, '127.0.0.1', resolve));
  return {
    port,
    stop: async () => {
      for (const socket of sockets) socket.destroy();
      await new Promise<void>((resolve) => tcp.close(() => resolve()));
      await new Promise<void>((resolve) => udp.close(() => resolve()));
    },
  };
}
