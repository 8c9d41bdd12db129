/**
 * Where the daemon's time goes (npm run bench:profile): the bundle as shipped under
 * `node --cpu-prof`, warmed up, then loaded with the hot workload (or, with --cold, every request
 * a new client); prints the functions with the most self time, in µs per request.
 * Options: --requests N (default 60000), --connections C (default 100), --cold, --floor (profile
 * the floor server, bench/floor-server.ts, instead of the daemon: the same workload, to compare).
 * FCRDNS_BENCH_NODE_FLAGS='…' replaces the shipped node flags, as for every bench.
 */
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { mkdtempSync, readdirSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort } from '../test/helpers/knot.js';
import { loadgen, startShippedDaemon, stop, waitForPort } from './lib/processes.js';
import { startStack } from './lib/stack.js';
import type { Workload } from './lib/workload.js';

const args = process.argv.slice(2);
const option = (name: string, fallback: number) => (args.includes(name) ? Number(args[args.indexOf(name) + 1]) : fallback);
const REQUESTS = option('--requests', 60_000);
const CONNECTIONS = option('--connections', 100);
const COLD = args.includes('--cold');
const FLOOR = args.includes('--floor');
const WARMUP = 6000;

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
}
interface Profile {
  nodes: ProfileNode[];
  samples: number[];
  timeDeltas: number[];
}

const workload = (offset: number): Workload => (COLD ? { kind: 'cold', offset } : { kind: 'hot', pool: 3000 });

const stack = await startStack();
try {
  const dir = mkdtempSync(join(tmpdir(), 'fcrdns-profile-'));
  const daemon = FLOOR
    ? await (async () => {
        const port = await freePort();
        const child = spawn(process.execPath, ['--cpu-prof', '--cpu-prof-dir', dir, '--import', 'tsx', join(fileURLToPath(new URL('.', import.meta.url)), 'floor-server.ts'), String(port), stack.resolver], { stdio: ['ignore', 'ignore', 'inherit'] });
        await waitForPort(port, child);
        return { port, child };
      })()
    : await startShippedDaemon(stack.resolver, { extraNodeFlags: ['--cpu-prof', '--cpu-prof-dir', dir], dir });
  await loadgen(daemon.port, CONNECTIONS, WARMUP, workload(0));
  const load = await loadgen(daemon.port, CONNECTIONS, REQUESTS, workload(WARMUP));
  await stop(daemon.child);
  const file = readdirSync(dir).find((name) => name.endsWith('.cpuprofile'));
  if (!file) throw new Error('no profile written');
  const profile = JSON.parse(readFileSync(join(dir, file), 'utf8')) as Profile;
  const self = new Map<number, number>();
  profile.samples.forEach((id, i) => self.set(id, (self.get(id) ?? 0) + (profile.timeDeltas[i] ?? 0)));
  const byFunction = new Map<string, number>();
  let total = 0;
  for (const node of profile.nodes) {
    const us = self.get(node.id) ?? 0;
    total += us;
    const url = node.callFrame.url.replace(/^.*\//, '');
    const key = `${node.callFrame.functionName || '(anonymous)'} ${url}:${node.callFrame.lineNumber + 1}`;
    byFunction.set(key, (byFunction.get(key) ?? 0) + us);
  }
  console.log(`load: ${JSON.stringify(load)}`);
  console.log(`profile: ${(total / 1e6).toFixed(2)} s sampled (the warm-up included); self time per function:`);
  for (const [key, us] of [...byFunction].sort((a, b) => b[1] - a[1]).slice(0, 45)) {
    console.log(`${((100 * us) / total).toFixed(1).padStart(5)}%  ${(us / REQUESTS).toFixed(2).padStart(6)} µs/req  ${key}`);
  }
  console.log(`profile file: ${join(dir, file)}`);
} finally {
  await stack.stop();
}
