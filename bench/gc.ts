/**
 * What the garbage collector works on under load (npm run bench:gc): the shipped bundle under the
 * unit's node flags plus --trace-gc-nvp, driven over a socket by the load generator, and V8's own
 * line per collection read back. Prints, for the steady part of the run (the first third of the
 * young-generation collections left out: start-up and warm-up promote what lives for good),
 * young-generation collections per 1,000 requests, bytes promoted to the old generation per
 * request, V8's count of bytes that survived per request, and the mark-compacts of the whole
 * measured run.
 *
 * Promotion is what the full collections then mark and sweep. Session 9 (BENCHMARKS.md) found it
 * does not follow request lifetimes (the same per new client with a 4 or an 8 MB semi-space, and
 * at C=1): run it at C=1 and at C=100, and with a setting changed (`CONFIG='cache_size = 16'`),
 * to see what a change keeps.
 *
 * Usage: npm run bench:gc -- [--cold | --hot] [--connections C] [--requests N]
 *   --cold (default): every request a client neither the daemon nor the resolver has seen;
 *   --hot: 3,000 clients over and over (cached, judged from each client's memo).
 *   CONFIG='key = value; …' adds configuration lines; BUNDLE=path runs another bundle (a
 *   package.json saying {"type":"commonjs"} beside it); FCRDNS_BENCH_NODE_FLAGS replaces the
 *   unit's node flags (test/helpers/shipped.ts).
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, openSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort } from '../test/helpers/knot.js';
import { BUNDLE } from '../test/helpers/bundle.js';
import { loadgen, stop, waitForPort } from './lib/processes.js';
import { shippedNodeFlags } from './lib/shipped.js';
import { startStack, ZONE_SIZE } from './lib/stack.js';
import type { Workload } from './lib/workload.js';

const args = process.argv.slice(2);
const option = (name: string, fallback: number): number => (args.includes(name) ? Number(args[args.indexOf(name) + 1]) : fallback);
const HOT = args.includes('--hot');
const CONNECTIONS = option('--connections', 100);
const REQUESTS = option('--requests', HOT ? 200_000 : 30_000);
const WARMUP = HOT ? 40_000 : 3_000;
if (!HOT && WARMUP + REQUESTS > ZONE_SIZE) throw new Error(`--cold: at most ${ZONE_SIZE - WARMUP} requests (the zone's clients)`);

/** One --trace-gc-nvp line's name=value pairs. */
function fieldsOf(line: string): Record<string, string> {
  return Object.fromEntries([...line.matchAll(/(\w+)=([\w.%]+)/g)].map((match) => [match[1], match[2]]));
}

const stack = await startStack();
const dir = mkdtempSync(join(tmpdir(), 'fcrdns-gc-'));
try {
  const port = await freePort();
  const config = join(dir, 'gc.conf');
  const extra = (process.env.CONFIG ?? '').split(';').map((line) => line.trim()).filter((line) => line !== '');
  writeFileSync(config, [`listen = 127.0.0.1:${port}`, `dns_servers = ${stack.resolver}`, 'mode = strict', 'max_connections = 10000', ...extra, ''].join('\n'));
  // V8 writes its lines to stdout, among the decision lines: both go to one file, read after.
  const output = join(dir, 'stdout');
  const child = spawn(process.execPath, [...shippedNodeFlags(), '--trace-gc-nvp', process.env.BUNDLE ?? BUNDLE, '--config', config], {
    stdio: ['ignore', openSync(output, 'w'), 'inherit'],
  });
  await waitForPort(port, child);
  const workload = (offset: number): Workload => (HOT ? { kind: 'hot', pool: 3000 } : { kind: 'cold', offset });
  await loadgen(port, CONNECTIONS, WARMUP, workload(0));
  const measuredFrom = readFileSync(output, 'utf8').length;
  const result = await loadgen(port, CONNECTIONS, REQUESTS, workload(WARMUP));
  await stop(child);
  const collections = readFileSync(output, 'utf8')
    .slice(measuredFrom)
    .split('\n')
    .filter((line) => line.includes(' gc='))
    .map(fieldsOf);
  const scavenges = collections.filter((gc) => gc.gc === 's');
  const steady = scavenges.slice(Math.floor(scavenges.length / 3));
  const perRequest = REQUESTS / Math.max(1, scavenges.length);
  const sum = (key: string) => steady.reduce((total, gc) => total + Number(gc[key] ?? 0), 0);
  const fullCollections = collections.filter((gc) => gc.gc === 'mc' || gc.gc === 'ms').length;
  console.log(
    `${HOT ? 'hot' : 'cold'}, C=${CONNECTIONS}, ${REQUESTS} requests (${result.rps.toFixed(0)} req/s, ${result.errors} errors): ` +
      `${((scavenges.length * 1000) / REQUESTS).toFixed(2)} young-generation collections per 1,000 requests; ` +
      `of the last ${steady.length}: promoted ${(sum('promoted') / steady.length / perRequest).toFixed(0)} B per request, ` +
      `survived (V8's new_space_survived) ${(sum('new_space_survived') / steady.length / perRequest).toFixed(0)} B per request; ` +
      `${fullCollections} mark-compacts`,
  );
} finally {
  await stack.stop();
  rmSync(dir, { recursive: true, force: true });
}
