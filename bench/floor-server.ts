/**
 * Baseline (c), for the cold workloads: the least any policy server that does these lookups can
 * do. The null server's codec, then the same PTR + forward lookups as baseline (b) with node:dns'
 * callback Resolver (no promises, no timers, no cache, no logging), then action=DUNNO. The
 * daemon against it is the daemon's own cost; it against raw c-ares is what the protocol and the
 * load generator cost on the same two cores. Usage: floor-server.ts PORT RESOLVER
 */
import { Resolver } from 'node:dns';
import { parseClientIp, reverseName } from '../src/util/ip.js';
import { listenForPolicy } from './lib/policy-listener.js';

const resolver = new Resolver({ timeout: 2000, tries: 2 });
resolver.setServers([process.argv[3] ?? '127.0.0.1:53']);

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

listenForPolicy(Number(process.argv[2]), lookup);
