/**
 * Soak: REQUESTS requests (default 1,000,000) over DISTINCT client IPs (default 100,000, IPv6
 * under 2001:db8::/32) against the shipped bundle and a real DNS server (Knot) on loopback.
 * Reports errors, the daemon's resident memory at start, peak and end, and its open file
 * descriptors, so leaks show as numbers. Run: npm run soak [-- REQUESTS DISTINCT CONNECTIONS].
 */
import { readFileSync, readdirSync } from 'node:fs';
import { parseClientIp, reverseName } from '../src/util/ip.js';
import { startBundle } from '../test/helpers/bundle.js';
import { shippedNodeFlags } from './lib/shipped.js';
import { startKnot } from '../test/helpers/knot.js';
import { PolicyClient } from '../test/helpers/policy-client.js';

const REQUESTS = Number(process.argv[2] ?? 1_000_000);
const DISTINCT = Number(process.argv[3] ?? 100_000);
const CONNECTIONS = Number(process.argv[4] ?? 50);

const address = (n: number) => `2001:db8::${(n >> 16).toString(16)}:${(n & 0xffff).toString(16)}`;
const owner = (n: number) => reverseName(parseClientIp(address(n))!).replace(/\.8\.b\.d\.0\.1\.0\.0\.2\.ip6\.arpa$/, '');

function rssMiB(pid: number): number {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  return Number(/VmRSS:\s+(\d+) kB/.exec(status)?.[1] ?? 0) / 1024;
}
const fds = (pid: number) => readdirSync(`/proc/${pid}/fd`).length;

async function main(): Promise<void> {
  // As shipped: the launchers' heap flags, unless FCRDNS_BENCH_NODE_FLAGS says otherwise.
  console.log(`daemon node flags: ${shippedNodeFlags().join(' ') || '(none)'}`);
  // Nine in ten clients pass; every tenth has no PTR (NXDOMAIN).
  const ptr: string[] = [];
  const forward: string[] = [];
  for (let n = 0; n < DISTINCT; n++) {
    if (n % 10 === 9) continue;
    ptr.push(`${owner(n)} PTR h${n}.example.com.`);
    forward.push(`h${n} AAAA ${address(n)}`);
  }
  console.log(`zones: ${ptr.length} PTR, ${forward.length} AAAA records`);
  const knot = await startKnot({ 'example.com': forward, '8.b.d.0.1.0.0.2.ip6.arpa': ptr });
  const daemon = await startBundle(
    `listen = 127.0.0.1:0\ndns_servers = 127.0.0.1:${knot.port}\nmode = strict\ncache_size = 100000\nlog_level = info\n`,
  );
  const pid = daemon.child.pid ?? 0;
  // Read the log as journald would, promptly, counting bytes (parsing every line here would
  // slow this process, which also drives the load, until the daemon's log backlog grew).
  let logBytes = 0;
  daemon.child.stdout?.removeAllListeners('data');
  daemon.child.stdout?.on('data', (chunk: Buffer) => (logBytes += chunk.length));
  daemon.lines.length = 0;
  const rssStart = rssMiB(pid);
  const fdStart = fds(pid);
  let peak = rssStart;
  const clients = await Promise.all(Array.from({ length: CONNECTIONS }, () => PolicyClient.connect({ port: daemon.port })));
  let next = 0;
  let errors = 0;
  let done = 0;
  const started = Date.now();
  const samples: string[] = [];
  const sampler = setInterval(() => (peak = Math.max(peak, rssMiB(pid))), 200);
  await Promise.all(
    clients.map(async (client) => {
      for (;;) {
        const i = next++;
        if (i >= REQUESTS) return;
        const n = (i * 7919) % DISTINCT;
        const reply = await client.ask({ client_address: address(n), instance: '' });
        const expected = n % 10 === 9 ? `550 5.7.25 cannot find your hostname, [${parseClientIp(address(n))!.text}]` : 'DUNNO';
        if (reply !== expected) errors++;
        done++;
        if (done % 100_000 === 0) {
          const line = `${done} requests: RSS ${rssMiB(pid).toFixed(1)} MiB, ${Math.round(done / ((Date.now() - started) / 1000))} req/s`;
          samples.push(line);
          console.log(line);
        }
      }
    }),
  );
  clearInterval(sampler);
  const seconds = (Date.now() - started) / 1000;
  clients.forEach((client) => client.close());
  await new Promise((resolve) => setTimeout(resolve, 500));
  const result = {
    requests: done,
    distinct_ips: DISTINCT,
    connections: CONNECTIONS,
    errors,
    seconds: Math.round(seconds),
    requests_per_second: Math.round(done / seconds),
    rss_mib: { start: +rssStart.toFixed(1), peak: +peak.toFixed(1), end: +rssMiB(pid).toFixed(1) },
    open_fds: { start: fdStart, end: fds(pid) },
    log_mib_read: +(logBytes / 1024 / 1024).toFixed(1),
    log_lines_dropped: /not being read/.test(daemon.stderr()),
    daemon_alive: daemon.child.exitCode === null,
  };
  console.log(JSON.stringify(result, null, 2));
  await daemon.stop();
  await knot.stop();
  if (errors > 0 || !result.daemon_alive || result.log_lines_dropped || result.open_fds.end > result.open_fds.start + 2) process.exitCode = 1;
}

await main();
