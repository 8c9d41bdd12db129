/**
 * Two builds of the daemon over sockets, side by side (npm run bench:ab -- OLD.js NEW.js): both
 * bundles run at once under the shipped node flags, each warmed up, then take turns under the hot
 * workload (C=100, 40,000 requests a turn, the order alternating), and the server CPU per request
 * (the scheduler's count per thread, in nanoseconds) and req/s of each are reported, fastest and median. A
 * slow spell of the machine then hits both builds alike, which separate bench runs minutes
 * apart do not. A bundle outside dist/ needs a package.json saying {"type":"commonjs"} beside it.
 * ROUNDS=N (default 10) turns each.
 * OLD_CONFIG / NEW_CONFIG: extra configuration lines for one side (`;` between them), to measure
 * what a setting costs with one bundle given twice (`NEW_CONFIG='cache_size = 2000'`); OLD_FLAGS /
 * NEW_FLAGS: node flags for one side instead of the shipped ones.
 * --cold: the cold workload instead (every request a client neither the daemon nor unbound has
 * seen: each side's turn takes 4,000 clients of the zone of its own, so 6 turns by default) —
 * the server CPU per new client of each build, both under the same noise.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, openSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort } from '../test/helpers/knot.js';
import { cpuSeconds, cpuSecondsExact, median } from './lib/measure.js';
import { loadgen, stop, waitForPort } from './lib/processes.js';
import { shippedNodeFlags } from './lib/shipped.js';
import { startStack, ZONE_SIZE } from './lib/stack.js';
import type { Workload } from './lib/workload.js';

const [oldBundle, newBundle] = process.argv.slice(2).filter((arg) => arg !== '--cold');
if (!oldBundle || !newBundle) throw new Error('usage: ab.ts OLD-BUNDLE.js NEW-BUNDLE.js');
const COLD = process.argv.includes('--cold');
const ROUNDS = Number(process.env.ROUNDS ?? (COLD ? 6 : 10));
const REQUESTS = COLD ? 4_000 : 40_000;
/** Cold: the first 6,000 clients warm the two sides up, then each turn takes the next REQUESTS. */
const COLD_WARMUP = 3_000;
let nextClient = 0;
const workload = (count: number): Workload => {
  if (!COLD) return { kind: 'hot', pool: 3000 };
  const offset = nextClient;
  nextClient += count;
  if (nextClient > ZONE_SIZE) throw new Error(`--cold: ${ROUNDS} turns need more than the zone's ${ZONE_SIZE} clients`);
  return { kind: 'cold', offset };
};

const stack = await startStack();
const servers: Array<{ name: string; port: number; child: ChildProcess; cpuUs: number[]; kernelUs: number[]; rps: number[] }> = [];
try {
  for (const [name, bundle, extra, flagsOverride] of [
    [`old (${oldBundle})`, oldBundle, process.env.OLD_CONFIG, process.env.OLD_FLAGS],
    [`new (${newBundle})`, newBundle, process.env.NEW_CONFIG, process.env.NEW_FLAGS],
  ] as const) {
    const flags = flagsOverride === undefined ? shippedNodeFlags() : flagsOverride.split(' ').filter((flag) => flag !== '');
    const port = await freePort();
    const dir = mkdtempSync(join(tmpdir(), 'fcrdns-ab-'));
    writeFileSync(join(dir, 'c.conf'), `listen = 127.0.0.1:${port}\ndns_servers = ${stack.resolver}\nmode = strict\nmax_connections = 10000\n${(extra ?? '').split(';').map((line) => `${line.trim()}\n`).join('')}`);
    const child = spawn(process.execPath, [...flags, bundle, '--config', join(dir, 'c.conf')], { stdio: ['ignore', openSync('/dev/null', 'w'), 'inherit'] });
    await waitForPort(port, child);
    servers.push({ name, port, child, cpuUs: [], kernelUs: [], rps: [] });
    await loadgen(port, 100, COLD ? COLD_WARMUP : 20_000, workload(COLD_WARMUP));
  }
  for (let round = 0; round < ROUNDS; round++) {
    for (const server of round % 2 === 0 ? servers : [...servers].reverse()) {
      const before = cpuSeconds(server.child.pid);
      const exactBefore = cpuSecondsExact(server.child.pid);
      const result = await loadgen(server.port, 100, REQUESTS, workload(REQUESTS));
      const exactAfter = cpuSecondsExact(server.child.pid);
      const after = cpuSeconds(server.child.pid);
      server.cpuUs.push(((exactAfter - exactBefore) * 1e6) / REQUESTS);
      server.kernelUs.push(((after.system - before.system) * 1e6) / REQUESTS);
      server.rps.push(result.rps);
    }
  }
  for (const { name, cpuUs, kernelUs, rps } of servers) {
    console.log(
      `${name}: server CPU per ${COLD ? 'new client' : 'request'} ${Math.min(...cpuUs).toFixed(2)} µs fastest, ${median(cpuUs).toFixed(2)} median ` +
        `(of it in the kernel ${median(kernelUs).toFixed(2)}); ` +
        `${Math.max(...rps).toFixed(0)} req/s best, ${median(rps).toFixed(0)} median (${ROUNDS} turns of ${REQUESTS})`,
    );
  }
} finally {
  for (const server of servers) await stop(server.child);
  await stack.stop();
}
