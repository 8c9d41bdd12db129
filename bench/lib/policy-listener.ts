/**
 * The baselines' policy listener: the daemon's own codec on 127.0.0.1:port, and for each request
 * `answer(client_address, reply, attributes)`; `reply()` writes action=DUNNO. A request without a
 * client_address, or bytes the codec refuses, close the connection. SIGTERM exits normally, so
 * `node --cpu-prof` writes its profile.
 */
import net from 'node:net';
import { PolicyDecoder, type PolicyAttributes } from '../../src/protocol/codec.js';
import { encodeReply } from '../../src/protocol/reply.js';

const DUNNO = encodeReply('DUNNO');

export function listenForPolicy(port: number, answer: (clientAddress: string, reply: () => void, attributes: PolicyAttributes) => void): void {
  const server = net.createServer((socket) => {
    socket.setNoDelay(true);
    const decoder = new PolicyDecoder();
    const reply = () => {
      if (!socket.destroyed) socket.write(DUNNO);
    };
    socket.on('data', (chunk: Buffer) => {
      for (const event of decoder.push(chunk)) {
        if (event.kind === 'trouble') {
          socket.destroy();
          return;
        }
        const address = event.attributes.get('client_address');
        if (address === undefined) socket.destroy();
        else answer(address, reply, event.attributes);
      }
    });
    socket.on('error', () => undefined);
  });
  server.listen(port, '127.0.0.1', () => process.stdout.write('ready\n'));
  process.on('SIGTERM', () => process.exit(0));
}
