/**
 * Baseline (c), for the cold workloads: the least any policy server that does these lookups can
 * do. The null server's codec, then the same PTR + forward lookups as baseline (b) with node:dns'
 * callback Resolver (no promises, no timers, no cache, no logging), then action=DUNNO. The
 * daemon against it is the daemon's own cost; it against raw c-ares is what the protocol and the
 * load generator cost on the same two cores. Usage: floor-server.ts PORT RESOLVER
 */
import { Resolver } from 'node:dns';
import net from 'node:net';
import { parseClientIp, reverseName } from '../src/ip.js';
import { PolicyDecoder, encodeReply } from '../src/protocol.js';

const port = Number(process.argv[2]);
const resolver = new Resolver({ timeout: 2000, tries: 2 });
resolver.setServers([process.argv[3] ?? '127.0.0.1:53']);
const reply = encodeReply('DUNNO');

/** PTR, then the forward lookup of every name (at most ten), then `done`. */
function lookup(address: string, done: () => void): void {
  const ip = parseClientIp(address);
  if (!ip) return done();
  resolver.resolvePtr(reverseName(ip), (error, names) => {
    if (error || names.length === 0) return done();
    let waiting = Math.min(names.length, 10);
    const forward = ip.family === 6 ? resolver.resolve6.bind(resolver) : resolver.resolve4.bind(resolver);
    for (const name of names.slice(0, 10)) forward(name, () => --waiting === 0 && done());
  });
}

const server = net.createServer((socket) => {
  socket.setNoDelay(true);
  const decoder = new PolicyDecoder();
  socket.on('data', (chunk: Buffer) => {
    for (const event of decoder.push(chunk)) {
      if (event.kind === 'trouble') {
        socket.destroy();
        return;
      }
      const address = event.attributes.get('client_address');
      if (address === undefined) socket.destroy();
      else lookup(address, () => socket.destroyed || socket.write(reply));
    }
  });
  socket.on('error', () => undefined);
});
server.listen(port, '127.0.0.1', () => process.stdout.write('ready\n'));
process.on('SIGTERM', () => process.exit(0)); // exits normally, so --cpu-prof writes its profile
