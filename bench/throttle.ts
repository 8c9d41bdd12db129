/**
 * The throttle action's cost (issue 27 item 6; npm run bench:throttle): hot requests (cached
 * answers, each request a new message) for clients whose class is throttled — mismatch_action =
 * throttle at 1000/second with a burst of 1000 and throttle_prefix_ipv6 = 128, so every client
 * is a network of its own and no budget is ever spent — against the same daemon with
 * mismatch_action = dunno (the same DUNNO answer, no throttle step), sides taking turns in each
 * run; once with the budgets in memory, once in a Redis on loopback (every request one EVALSHA).
 * Then the in-memory store's own heap per network (a full store, half IPv4 /24, half IPv6 /64).
 * Each figure the median of RUNS runs with its min–max; ratios against the baseline of the same run.
 * Options: --runs N (default 5), --quick (fewer requests), --connections 10,100 (default 100),
 * --no-redis, --bundle PATH (another build).
 */
import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { redisMissing, startRedis, type RedisServer } from '../test/helpers/redis.js';
import { cpuSeconds, median } from './lib/measure.js';
import { loadgen, startShippedDaemon, stop, type LoadResult } from './lib/processes.js';
import { startStack, type DnsStack } from './lib/stack.js';
import type { Workload } from './lib/workload.js';
import { fmt, reporter } from './lib/targets.js';

const args = process.argv.slice(2);
const option = (name: string) => (args.includes(name) ? args[args.indexOf(name) + 1] : undefined);
const RUNS = Number(option('--runs')) || 5;
const QUICK = args.includes('--quick');
const CONNECTIONS = (option('--connections') ?? '100').split(',').map(Number);
const REDIS = !args.includes('--no-redis') && redisMissing() === undefined;
/** --bundle PATH: another build than dist/fcrdns-policyd.js. */
const BUNDLE_PATH = option('--bundle');
/** The zone's mismatch clients the hot workload cycles over (1,310 exist). */
const POOL = 1200;
const WORKLOAD: Workload = { kind: 'hot-mismatch', pool: POOL };
const PLAIN = 'mismatch_action = dunno\n';
const THROTTLED = 'mismatch_action = throttle\nthrottle_rate = 1000/second\nthrottle_burst = 1000\nthrottle_prefix_ipv6 = 128\n';

const { lines: report, say, target } = reporter();

type Side = LoadResult & { cpuUs: number; redisUs?: number; evalsha?: number };

/** One side of a run: a fresh daemon with `extraConfig`, warmed up, then measured. */
async function side(stack: DnsStack, extraConfig: string, connections: number, requests: number, redis?: RedisServer): Promise<Side> {
  const daemon = await startShippedDaemon(stack.resolver, { extraConfig, ...(BUNDLE_PATH ? { bundle: BUNDLE_PATH } : {}) });
  try {
    await loadgen(daemon.port, connections, POOL * 4, WORKLOAD);
    if (redis) await redis.cli('CONFIG', 'RESETSTAT');
    const before = { daemon: cpuSeconds(daemon.child.pid), redis: redis ? cpuSeconds(redis.pid()) : undefined };
    const result = await loadgen(daemon.port, connections, requests, WORKLOAD);
    const after = { daemon: cpuSeconds(daemon.child.pid), redis: redis ? cpuSeconds(redis.pid()) : undefined };
    const us = (a: { user: number; system: number }, b: { user: number; system: number }) => ((a.user + a.system - b.user - b.system) * 1e6) / requests;
    const out: Side = { ...result, cpuUs: us(after.daemon, before.daemon) };
    if (redis && after.redis && before.redis) {
      out.redisUs = us(after.redis, before.redis);
      // Every step reached Redis: EVALSHA calls per measured request (1.00 when none fell back to memory).
      const stats = await redis.cli('INFO', 'commandstats');
      out.evalsha = Number(/cmdstat_evalsha:calls=(\d+)/.exec(stats)?.[1] ?? 0) / requests;
    }
    return out;
  } finally {
    await stop(daemon.child);
  }
}

function line(name: string, sides: Side[], baseline: Side[]): void {
  const ratio = sides.map((r, i) => r.rps / (baseline[i]?.rps ?? 1));
  const p99 = sides.map((r, i) => r.p99 - (baseline[i]?.p99 ?? 0));
  say(
    `  ${name}: ${fmt(sides.map((r) => r.rps))} req/s, ratio ${fmt(ratio, 2)}; p50/p99 ${median(sides.map((r) => r.p50)).toFixed(2)}/${median(sides.map((r) => r.p99)).toFixed(2)} ms, ` +
      `p99 ${fmt(p99, 2)} ms over the baseline; daemon CPU ${fmt(sides.map((r) => r.cpuUs), 1)} µs/request` +
      (sides[0]?.redisUs !== undefined ? `, redis-server ${fmt(sides.map((r) => r.redisUs ?? 0), 1)} µs/request, EVALSHA per request ${fmt(sides.map((r) => r.evalsha ?? 0), 2)}` : '') +
      `; errors ${sides.reduce((a, r) => a + r.errors, 0)}; actions ${JSON.stringify(sides[0]?.actions)}`,
  );
}

async function hot(stack: DnsStack, redis: RedisServer | undefined): Promise<void> {
  for (const connections of CONNECTIONS) {
    const requests = (QUICK ? 20_000 : 60_000) / (connections === 1 ? 4 : 1);
    const plain: Side[] = [];
    const memory: Side[] = [];
    const shared: Side[] = [];
    for (let i = 0; i < RUNS; i++) {
      plain.push(await side(stack, PLAIN, connections, requests));
      memory.push(await side(stack, THROTTLED, connections, requests));
      if (redis) {
        await redis.cli('FLUSHALL');
        shared.push(await side(stack, `${THROTTLED}throttle_store = ${redis.url}\n`, connections, requests, redis));
      }
    }
    say(`hot, a throttled class (${POOL} mismatch clients, never limited), C=${connections}, ${requests} requests:`);
    say(`  no throttling (mismatch_action = dunno): ${fmt(plain.map((r) => r.rps))} req/s, p50/p99 ${median(plain.map((r) => r.p50)).toFixed(2)}/${median(plain.map((r) => r.p99)).toFixed(2)} ms, daemon CPU ${fmt(plain.map((r) => r.cpuUs), 1)} µs/request`);
    line('throttle, in memory', memory, plain);
    if (redis) line('throttle, Redis on loopback', shared, plain);
    if (redis && median(shared.map((r) => r.evalsha ?? 0)) < 0.9) say('  WARNING: fewer EVALSHA than requests: some messages of the throttled class took no throttle step (see BENCHMARKS.md, issue 27 bench)');
    if (connections !== 100) continue;
    target('hot C=100 req/s, throttle in memory / no throttling', memory.map((r, i) => r.rps / (plain[i]?.rps ?? 1)), '>=', 0.9);
    if (redis) {
      target('hot C=100 req/s, throttle in Redis / no throttling', shared.map((r, i) => r.rps / (plain[i]?.rps ?? 1)), '>=', 0.6);
      target('hot C=100 p99, throttle in Redis − no throttling (ms)', shared.map((r, i) => r.p99 - (plain[i]?.p99 ?? 0)), '<=', 2);
    }
  }
}

/** The in-memory store's heap per network, in a process of its own with --expose-gc (bench/throttle-memory.ts). */
async function memoryPerKey(): Promise<void> {
  const run = promisify(execFile);
  const script = join(fileURLToPath(new URL('.', import.meta.url)), 'throttle-memory.ts');
  const figures: Array<{ perKey: number; keys: number }> = [];
  for (let i = 0; i < RUNS; i++) {
    const { stdout } = await run(process.execPath, ['--expose-gc', '--import', 'tsx', script]);
    figures.push(JSON.parse(stdout) as { perKey: number; keys: number });
  }
  say(`in-memory store: ${fmt(figures.map((f) => f.perKey))} bytes of heap per network (a full store: ${figures[0]?.keys} networks, half IPv4 /24, half IPv6 /64)`);
}

say(`fcrdns-policyd throttle bench, ${new Date().toISOString()}, ${RUNS} runs each, medians (min–max)${REDIS ? '' : `; no Redis: ${redisMissing() ?? '--no-redis'}`}`);
const stack = await startStack();
const redis = REDIS ? await startRedis() : undefined;
try {
  await hot(stack, redis);
  await memoryPerKey();
} finally {
  await redis?.stop();
  await stack.stop();
}
writeFileSync(join(tmpdir(), 'fcrdns-bench-throttle-report.txt'), `${report.join('\n')}\n`);
