/**
 * The benchmark (npm run bench): the daemon as shipped (the esbuild bundle, logging on, to
 * /dev/null) against baselines started in the same run, each figure the median of RUNS runs
 * with its min–max, and the ratio the targets are stated in. See BENCHMARKS.md.
 * Options: --runs N (default 3), --quick (fewer requests), --only NAME[,NAME] (hot, cold-latency,
 * cold-local, mixed, burst, startup, pipeline, instructions — the last only when named),
 * --connections 1,10,100 (the hot workload's levels).
 */
import { spawn, execFile, type ChildProcess } from 'node:child_process';
import { mkdtempSync, openSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { BUNDLE } from '../test/helpers/bundle.js';
import { freePort } from '../test/helpers/knot.js';
import { shippedNodeFlags } from './lib/shipped.js';
import { cpuSeconds, median } from './lib/measure.js';
import { loadgen, startShippedDaemon, stop, tsx, waitForPort, type LoadResult } from './lib/processes.js';
import { startStack, ZONE_SIZE, type DnsStack } from './lib/stack.js';
import type { Workload } from './lib/workload.js';

const run = promisify(execFile);
const args = process.argv.slice(2);
const RUNS = Number(args[args.indexOf('--runs') + 1] ?? 3) || 3;
const QUICK = args.includes('--quick');
/** --connections 100 (or 1,10): the hot workload's concurrency levels. */
const HOT_CONNECTIONS = args.includes('--connections') ? (args[args.indexOf('--connections') + 1] ?? '').split(',').map(Number) : [1, 10, 100];
const ONLY = args.includes('--only') ? (args[args.indexOf('--only') + 1] ?? '').split(',') : undefined;
/** callgrind runs take minutes: only on request (--only instructions). */
const wanted = (name: string) => (ONLY ? ONLY.includes(name) : name !== 'instructions');
const HERE = import.meta.dirname;

const fmt = (values: number[], digits = 0) =>
  `${median(values).toFixed(digits)} (${Math.min(...values).toFixed(digits)}–${Math.max(...values).toFixed(digits)})`;

async function rawCares(resolver: string, concurrency: number, requests: number, workload: Workload, warmup = 0): Promise<LoadResult> {
  return JSON.parse(await tsx('raw-cares.ts', JSON.stringify({ resolver, concurrency, requests, workload, warmup }))) as LoadResult;
}

/** A baseline policy server (bench/null-server.ts, bench/floor-server.ts) on a free port: `script PORT ...args`. */
async function startBaselineServer(script: string, ...args: string[]): Promise<{ port: number; child: ChildProcess }> {
  const port = await freePort();
  const child = spawn(process.execPath, ['--import', 'tsx', join(HERE, script), String(port), ...args], { stdio: ['ignore', 'ignore', 'inherit'] });
  await waitForPort(port, child);
  return { port, child };
}

/** CPU seconds of every process whose command name is one of `names`, summed per name. */
function cpuByName(names: readonly string[]): Record<string, number> {
  const totals: Record<string, number> = Object.fromEntries(names.map((name) => [name, 0]));
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      const comm = stat.slice(stat.indexOf('(') + 1, stat.lastIndexOf(')'));
      if (!(comm in totals)) continue;
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      totals[comm] = (totals[comm] ?? 0) + (Number(fields[11]) + Number(fields[12])) / 100;
    } catch {
      // The process ended while we looked.
    }
  }
  return totals;
}

/** Busy and idle CPU seconds of the whole machine, from /proc/stat (USER_HZ = 100). */
function machineCpu(): { busy: number; idle: number } {
  const fields = (readFileSync('/proc/stat', 'utf8').split('\n')[0] ?? '').split(/\s+/).slice(1).map(Number);
  const [user = 0, nice = 0, system = 0, idle = 0, iowait = 0, irq = 0, softirq = 0, steal = 0] = fields;
  return { busy: (user + nice + system + irq + softirq + steal) / 100, idle: (idle + iowait) / 100 };
}

/**
 * Run a measurement and say where the machine's CPU went meanwhile, in µs per request: the
 * daemon (by pid), unbound, knotd, and the rest (the load generator or the raw baseline, the
 * delay proxy, kernel work), plus the share of the two cores left idle.
 */
async function withCpuShares<T extends object>(
  requests: number,
  server: { name: string; pid: number | undefined } | undefined,
  measure: () => Promise<T>,
): Promise<T & { cpu: string }> {
  const daemonPid = server?.pid;
  const names = ['unbound', 'knotd'];
  const before = { machine: machineCpu(), byName: cpuByName(names), daemon: daemonPid ? cpuSeconds(daemonPid) : undefined };
  const result = await measure();
  const after = { machine: machineCpu(), byName: cpuByName(names), daemon: daemonPid ? cpuSeconds(daemonPid) : undefined };
  const us = (seconds: number) => ((seconds * 1e6) / requests).toFixed(0);
  const busy = after.machine.busy - before.machine.busy;
  const idle = after.machine.idle - before.machine.idle;
  const unbound = (after.byName.unbound ?? 0) - (before.byName.unbound ?? 0);
  const knot = (after.byName.knotd ?? 0) - (before.byName.knotd ?? 0);
  const daemon = after.daemon && before.daemon ? after.daemon.user + after.daemon.system - before.daemon.user - before.daemon.system : 0;
  const parts = [
    ...(server ? [`${server.name} ${us(daemon)}`] : []),
    `unbound ${us(unbound)}`,
    `knotd ${us(knot)}`,
    `rest ${us(busy - daemon - unbound - knot)}`,
  ];
  return { ...result, cpu: `${parts.join(', ')} µs/request, idle ${((100 * idle) / (busy + idle)).toFixed(0)}%` };
}

/** Warm up, then measure: the load result plus the server's CPU microseconds per measured request. */
async function measured(
  server: { port: number; child: ChildProcess },
  connections: number,
  requests: number,
  workload: Workload,
  warmup: number,
): Promise<LoadResult & { cpuUs: number; systemUs: number }> {
  await loadgen(server.port, connections, warmup, workload);
  const before = cpuSeconds(server.child.pid);
  const result = await loadgen(server.port, connections, requests, workload);
  const after = cpuSeconds(server.child.pid);
  const perRequest = (seconds: number) => (seconds * 1e6) / requests;
  return { ...result, cpuUs: perRequest(after.user + after.system - before.user - before.system), systemUs: perRequest(after.system - before.system) };
}

const report: string[] = [];
const say = (line: string) => {
  report.push(line);
  console.log(line);
};

async function hot(stack: DnsStack): Promise<void> {
  const pool = 3000;
  const requests = QUICK ? 20_000 : 60_000;
  for (const connections of HOT_CONNECTIONS) {
    const daemon: Array<LoadResult & { cpuUs: number; systemUs: number }> = [];
    const baseline: Array<LoadResult & { cpuUs: number; systemUs: number }> = [];
    const n = connections === 1 ? requests / 4 : requests;
    for (let i = 0; i < RUNS; i++) {
      const nul = await startBaselineServer('null-server.ts');
      baseline.push(await measured(nul, connections, n, { kind: 'hot', pool }, pool * 2));
      await stop(nul.child);
      const d = await startShippedDaemon(stack.resolver);
      daemon.push(await measured(d, connections, n, { kind: 'hot', pool }, pool * 2));
      await stop(d.child);
    }
    const ratio = daemon.map((result, i) => result.rps / (baseline[i]?.rps ?? 1));
    const p99ratio = daemon.map((result, i) => result.p99 / (baseline[i]?.p99 ?? 1));
    say(
      `hot C=${connections}: daemon ${fmt(daemon.map((r) => r.rps))} req/s, null ${fmt(baseline.map((r) => r.rps))} req/s, ratio ${fmt(ratio, 2)}; ` +
        `p50/p99/p99.9 daemon ${median(daemon.map((r) => r.p50)).toFixed(3)}/${median(daemon.map((r) => r.p99)).toFixed(3)}/${median(daemon.map((r) => r.p999 ?? 0)).toFixed(3)} ms, ` +
        `null ${median(baseline.map((r) => r.p50)).toFixed(3)}/${median(baseline.map((r) => r.p99)).toFixed(3)}/${median(baseline.map((r) => r.p999 ?? 0)).toFixed(3)} ms, p99 ratio ${fmt(p99ratio, 2)}; ` +
        `server CPU per request (of it in the kernel) daemon ${fmt(daemon.map((r) => r.cpuUs), 1)} (${median(daemon.map((r) => r.systemUs)).toFixed(1)}) µs, ` +
        `null ${fmt(baseline.map((r) => r.cpuUs), 1)} (${median(baseline.map((r) => r.systemUs)).toFixed(1)}) µs; errors ${daemon.reduce((a, r) => a + r.errors, 0)}`,
    );
  }
}

async function cold(name: string, delayMs: number): Promise<void> {
  const stack = await startStack({ delayMs });
  try {
    const requests = QUICK ? 5000 : delayMs ? 10_000 : 15_000;
    // Each side first handles a few thousand other new clients, as a daemon that has been running
    // for a while has: measured, a freshly started process is still compiling its hot code.
    const warmup = QUICK ? 1000 : 3000;
    const daemon: Array<LoadResult & { cpu: string }> = [];
    const baseline: Array<LoadResult & { cpu: string }> = [];
    const floor: Array<LoadResult & { cpu: string }> = [];
    for (let i = 0; i < RUNS; i++) {
      // Fresh IPs for each side and run, and an empty resolver cache: every request is cold.
      const workload = (side: number): Workload => ({ kind: 'cold', offset: (3 * i + side) * (requests + warmup) });
      await stack.flush();
      baseline.push(await withCpuShares(requests + warmup, undefined, () => rawCares(stack.resolver, 100, requests, workload(0), warmup)));
      await stack.flush();
      const f = await startBaselineServer('floor-server.ts', stack.resolver);
      floor.push(await withCpuShares(requests + warmup, { name: 'floor server', pid: f.child.pid }, () => loadgen(f.port, 100, requests, workload(1), { warmup })));
      await stop(f.child);
      await stack.flush();
      const d = await startShippedDaemon(stack.resolver);
      daemon.push(await withCpuShares(requests + warmup, { name: 'daemon', pid: d.child.pid }, () => loadgen(d.port, 100, requests, workload(2), { warmup })));
      await stop(d.child);
    }
    const ratio = daemon.map((result, i) => result.rps / (baseline[i]?.rps ?? 1));
    const floorRatio = floor.map((result, i) => result.rps / (baseline[i]?.rps ?? 1));
    const daemonToFloor = daemon.map((result, i) => result.rps / (floor[i]?.rps ?? 1));
    say(
      `${name} C=100: daemon ${fmt(daemon.map((r) => r.rps))} req/s, raw c-ares ${fmt(baseline.map((r) => r.rps))} lookups/s, ratio ${fmt(ratio, 2)}; ` +
        `p50/p99 daemon ${median(daemon.map((r) => r.p50)).toFixed(1)}/${median(daemon.map((r) => r.p99)).toFixed(1)} ms, raw ${median(baseline.map((r) => r.p50)).toFixed(1)}/${median(baseline.map((r) => r.p99)).toFixed(1)} ms; ` +
        `errors ${daemon.reduce((a, r) => a + r.errors, 0)}; actions ${JSON.stringify(daemon[0]?.actions)}`,
    );
    say(
      `  floor (null server + the raw lookups, over the policy protocol) ${fmt(floor.map((r) => r.rps))} req/s: ` +
        `floor/raw ${fmt(floorRatio, 2)}, daemon/floor ${fmt(daemonToFloor, 2)}`,
    );
    // Where the two cores went in the last run of each side (rest: load generator or raw baseline, proxy, kernel).
    say(`  CPU, daemon run: ${daemon.at(-1)?.cpu}; floor run: ${floor.at(-1)?.cpu}; raw c-ares run: ${baseline.at(-1)?.cpu}`);
  } finally {
    await stack.stop();
  }
}

async function mixed(stack: DnsStack): Promise<void> {
  const results: LoadResult[] = [];
  for (let i = 0; i < RUNS; i++) {
    await stack.flush();
    const d = await startShippedDaemon(stack.resolver);
    results.push(await loadgen(d.port, 100, QUICK ? 20_000 : 60_000, { kind: 'mixed', seed: 42 + i }));
    await stop(d.child);
  }
  say(`mixed (Zipf) C=100: daemon ${fmt(results.map((r) => r.rps))} req/s, p50/p99 ${median(results.map((r) => r.p50)).toFixed(2)}/${median(results.map((r) => r.p99)).toFixed(2)} ms; actions ${JSON.stringify(results[0]?.actions)}`);
}

async function pipelined(stack: DnsStack): Promise<void> {
  const d = await startShippedDaemon(stack.resolver);
  const result = await loadgen(d.port, 10, QUICK ? 20_000 : 60_000, { kind: 'hot', pool: 3000 }, { warmup: 6000, pipeline: 32 });
  await stop(d.child);
  say(`pipeline stress (10 connections × 32 in flight, hot): ${result.rps.toFixed(0)} req/s, p99 ${result.p99.toFixed(2)} ms, errors ${result.errors}`);
}

async function burst(stack: DnsStack): Promise<void> {
  const counts: string[] = [];
  for (let i = 0; i < RUNS; i++) {
    await stack.flush();
    const d = await startShippedDaemon(stack.resolver);
    const before = await stack.knot.queryCounts();
    const n = ZONE_SIZE - 1 - i * 50; // an unused pass client
    const result = await loadgen(d.port, 100, 100, { kind: 'fixed', n: n - (n % 50) });
    const after = await stack.knot.queryCounts();
    await stop(d.child);
    counts.push(`${(after.PTR ?? 0) - (before.PTR ?? 0)} PTR + ${(after.AAAA ?? 0) - (before.AAAA ?? 0)} AAAA (${result.errors} errors)`);
  }
  say(`burst (100 concurrent requests, one new IP), queries at the authoritative server: ${counts.join('; ')}`);
}

async function startup(): Promise<void> {
  const nodeOnly: number[] = [];
  const daemon: number[] = [];
  for (let i = 0; i < Math.max(RUNS, 10); i++) {
    const t0 = process.hrtime.bigint();
    await run(process.execPath, ['-e', '']);
    nodeOnly.push(Number(process.hrtime.bigint() - t0) / 1e6);
    const port = await freePort();
    const dir = mkdtempSync(join(tmpdir(), 'fcrdns-start-'));
    writeFileSync(join(dir, 'c.conf'), `listen = 127.0.0.1:${port}\n`);
    const t1 = process.hrtime.bigint();
    const child = spawn(process.execPath, [...shippedNodeFlags(), BUNDLE, '--config', join(dir, 'c.conf')], { stdio: ['ignore', 'ignore', 'inherit'] });
    await waitForPort(port, child);
    await new Promise<void>((resolve) => {
      const socket = net.connect(port, '127.0.0.1', () => socket.write('request=smtpd_access_policy\nclient_address=127.0.0.1\n\n'));
      socket.on('data', () => {
        socket.destroy();
        resolve();
      });
    });
    daemon.push(Number(process.hrtime.bigint() - t1) / 1e6);
    await stop(child);
  }
  say(`start-up to first answered request: ${fmt(daemon, 1)} ms; node -e '' ${fmt(nodeOnly, 1)} ms; difference ${(median(daemon) - median(nodeOnly)).toFixed(1)} ms`);
}

/** Instructions executed by a server process under callgrind (machine-noise free). */
async function serverInstructions(stack: DnsStack, requests: number, server: 'daemon' | 'null'): Promise<number> {
  const port = await freePort();
  const dir = mkdtempSync(join(tmpdir(), 'fcrdns-callgrind-'));
  writeFileSync(join(dir, 'c.conf'), `listen = 127.0.0.1:${port}\ndns_servers = ${stack.resolver}\nmode = strict\n`);
  const out = join(dir, 'callgrind.out');
  const devnull = openSync('/dev/null', 'w');
  const command =
    server === 'daemon'
      ? [process.execPath, ...shippedNodeFlags(), BUNDLE, '--config', join(dir, 'c.conf')]
      : [process.execPath, '--import', 'tsx', join(HERE, 'null-server.ts'), String(port)];
  const child = spawn('valgrind', ['--tool=callgrind', `--callgrind-out-file=${out}`, ...command], { stdio: ['ignore', devnull, devnull] });
  await waitForPort(port, child);
  // A long warm-up, so V8 has tiered up before the measured requests (JIT compiles are not request cost).
  await loadgen(port, 10, 5000, { kind: 'hot', pool: 500 });
  if (requests > 0) await loadgen(port, 10, requests, { kind: 'hot', pool: 500 });
  await stop(child);
  const text = readFileSync(out, 'utf8');
  return Number(/^(?:summary|totals): (\d+)/m.exec(text)?.[1] ?? 0);
}

async function instructions(stack: DnsStack): Promise<void> {
  const measured = 5000;
  const daemon: number[] = [];
  const baseline: number[] = [];
  for (let i = 0; i < RUNS; i++) {
    for (const [server, values] of [['null', baseline], ['daemon', daemon]] as const) {
      const base = await serverInstructions(stack, 0, server);
      const loaded = await serverInstructions(stack, measured, server);
      values.push((loaded - base) / measured);
    }
  }
  const ratio = daemon.map((value, i) => value / (baseline[i] ?? 1));
  say(
    `instructions per hot request (callgrind, server process, ${measured} requests minus a warm-up-only run): ` +
      `daemon ${fmt(daemon)}, null server ${fmt(baseline)}, ratio ${fmt(ratio, 2)}`,
  );
}

say(`fcrdns-policyd bench, ${new Date().toISOString()}, ${RUNS} runs each, medians (min–max)`);
if (wanted('startup')) await startup();
if (wanted('hot') || wanted('mixed') || wanted('burst') || wanted('pipeline') || wanted('instructions')) {
  const stack = await startStack();
  try {
    if (wanted('instructions')) await instructions(stack);
    if (wanted('burst')) await burst(stack);
    if (wanted('hot')) await hot(stack);
    if (wanted('pipeline')) await pipelined(stack);
    if (wanted('mixed')) await mixed(stack);
  } finally {
    await stack.stop();
  }
}
if (wanted('cold-latency')) await cold('cold, +20 ms DNS latency', 20);
if (wanted('cold-local')) await cold('cold, local DNS (CPU-bound)', 0);
writeFileSync(join(tmpdir(), 'fcrdns-bench-report.txt'), `${report.join('\n')}\n`);
