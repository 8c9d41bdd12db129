/**
 * The DNS stack the README recommends, started by the bench: Knot (authoritative, a generated
 * zone of client IPs under 2001:db8::/32) behind unbound (caching resolver) on loopback, with an
 * optional delay proxy between them that adds latency to every authoritative answer, as
 * recursion to remote servers does.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseClientIp, reverseName } from '../../src/util/ip.js';
import { freePort, startKnot, type Knot } from '../../test/helpers/knot.js';
import { startUnbound, unboundQueryCounts } from '../../test/helpers/unbound.js';

export const ZONE_SIZE = 65_536;

/** The n-th client address: 2001:db8::X:Y. */
export function clientAddress(n: number): string {
  return parseClientIp(`2001:db8::${(n >> 16).toString(16)}:${(n & 0xffff).toString(16)}`)!.text;
}

/** What the generated zone holds for client n (most pass). */
export function category(n: number): 'pass' | 'no_ptr' | 'mismatch' | 'no_forward' | 'several' | 'servfail' {
  switch (n % 50) {
    case 49:
      return 'no_ptr';
    case 48:
      return 'mismatch';
    case 47:
      return 'no_forward';
    case 46:
      return 'several';
    case 45:
      return 'servfail';
    default:
      return 'pass';
  }
}

const owner = (n: number) => reverseName(parseClientIp(clientAddress(n))!).replace(/\.8\.b\.d\.0\.1\.0\.0\.2\.ip6\.arpa$/, '');

/** Zones: the reverse zone, the forward zone, and a broken zone the SERVFAIL clients point into. */
export function generateZones(size = ZONE_SIZE): Record<string, string[] | 'broken'> {
  const ptr: string[] = [];
  const forward: string[] = [];
  for (let n = 0; n < size; n++) {
    const address = clientAddress(n);
    switch (category(n)) {
      case 'pass':
        ptr.push(`${owner(n)} PTR h${n}.example.com.`);
        forward.push(`h${n} AAAA ${address}`);
        break;
      case 'no_ptr':
        break;
      case 'mismatch':
        ptr.push(`${owner(n)} PTR h${n}.example.com.`);
        forward.push(`h${n} AAAA 2001:db8:ffff::${(n & 0xffff).toString(16)}`);
        break;
      case 'no_forward':
        ptr.push(`${owner(n)} PTR h${n}.example.com.`);
        break;
      case 'several':
        ptr.push(`${owner(n)} PTR old${n}.example.com.`, `${owner(n)} PTR h${n}.example.com.`);
        forward.push(`old${n} AAAA 2001:db8:ffff::1`, `h${n} AAAA ${address}`);
        break;
      case 'servfail':
        ptr.push(`${owner(n)} PTR h${n}.broken.example.net.`);
        break;
    }
  }
  return { 'example.com': forward, '8.b.d.0.1.0.0.2.ip6.arpa': ptr, 'broken.example.net': 'broken' };
}

export interface DnsStack {
  knot: Knot;
  /** `127.0.0.1:port` of unbound, for dns_servers and the raw c-ares baseline. */
  resolver: string;
  /** Queries unbound received from its clients since its last (re)start, by type (extended-statistics). */
  resolverQueryCounts(): Promise<Record<string, number>>;
  /** Restart unbound with an empty cache (between cold runs). */
  flush(): Promise<void>;
  stop(): Promise<void>;
}

/** unbound on `port` in front of Knot on `upstreamPort`, with room for the benches' load. */
function startBenchUnbound(dir: string, port: number, upstreamPort: number): Promise<ChildProcess> {
  return startUnbound({
    dir,
    port,
    stubs: ['example.com', 'broken.example.net', '8.b.d.0.1.0.0.2.ip6.arpa'].map((zone) => ({ zone, port: upstreamPort })),
    probe: 'h0.example.com',
    extra: ['msg-cache-size: 64m', 'rrset-cache-size: 128m', 'num-queries-per-thread: 4096', 'outgoing-range: 8192'],
    control: true,
  });
}

/** Start Knot + (delay proxy) + unbound. */
export async function startStack(options: { delayMs?: number; size?: number } = {}): Promise<DnsStack> {
  const knot = await startKnot(generateZones(options.size));
  let proxy: ChildProcess | undefined;
  let upstream = knot.port;
  if (options.delayMs) {
    upstream = await freePort();
    proxy = spawn(process.execPath, ['--import', 'tsx', join(fileURLToPath(new URL('.', import.meta.url)), '..', 'delay-proxy.ts'), String(upstream), String(knot.port), String(options.delayMs)], {
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    await new Promise<void>((resolve) => proxy?.stdout?.once('data', () => resolve()));
  }
  const dir = mkdtempSync(join(tmpdir(), 'fcrdns-unbound-'));
  const port = await freePort();
  let unbound = await startBenchUnbound(dir, port, upstream);
  const stopUnbound = async () => {
    if (unbound.exitCode !== null) return;
    const exited = new Promise((resolve) => unbound.once('exit', resolve));
    unbound.kill('SIGTERM');
    await exited;
  };
  return {
    knot,
    resolver: `127.0.0.1:${port}`,
    resolverQueryCounts: () => unboundQueryCounts(dir),
    async flush() {
      await stopUnbound();
      unbound = await startBenchUnbound(dir, port, upstream);
    },
    async stop() {
      await stopUnbound();
      proxy?.kill('SIGTERM');
      await knot.stop();
    },
  };
}
