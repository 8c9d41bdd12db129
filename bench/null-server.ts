/**
 * Baseline (a): a null policy server. It parses requests properly (the daemon's own codec) and
 * answers action=DUNNO at once: no DNS, no logging. The floor for the protocol on this machine.
 * Usage: null-server.ts PORT
 */
import net from 'node:net';
import { PolicyDecoder, encodeReply } from '../src/protocol.js';

const port = Number(process.argv[2]);
const reply = encodeReply('DUNNO');
const server = net.createServer((socket) => {
  socket.setNoDelay(true);
  const decoder = new PolicyDecoder();
  socket.on('data', (chunk: Buffer) => {
    for (const event of decoder.push(chunk)) {
      if (event.kind === 'trouble') {
        socket.destroy();
        return;
      }
      if (event.attributes.get('client_address') === undefined) socket.destroy();
      else socket.write(reply);
    }
  });
  socket.on('error', () => undefined);
});
server.listen(port, '127.0.0.1', () => process.stdout.write('ready\n'));
