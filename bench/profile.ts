/**
 * Where the daemon's time goes on the hot path (npm run bench:profile): the bundle as shipped
 * under `node --cpu-prof`, warmed up, then loaded at C=100 with the hot workload; prints the
 * functions with the most self time. Options: --requests N (default 60000), --connections C,
 * --node-flags '…', --cold (every request a new client).
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, openSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { execFile } from 'node:child_process';
import { BUNDLE } from '../test/helpers/bundle.js';
import { freePort } from '../test/helpers/knot.js';
import { shippedNodeFlags } from './lib/shipped.js';
import { startStack } from './lib/stack.js';

const args = process.argv.slice(2);
const option = (name: string, fallback: number) => (args.includes(name) ? Number(args[args.indexOf(name) + 1]) : fallback);
const REQUESTS = option('--requests', 60_000);
/** --node-flags '…' replaces the shipped flags (to compare heap settings). */
const NODE_FLAGS = args.includes('--node-flags') ? (args[args.indexOf('--node-flags') + 1] ?? '').split(' ').filter(Boolean) : shippedNodeFlags();
const CONNECTIONS = option('--connections', 100);
/** --cold: every request a new client (local DNS, no added latency) instead of the hot pool. */
const COLD = args.includes('--cold');
const run = promisify(execFile);

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  children?: number[];
}
interface Profile {
  nodes: ProfileNode[];
  samples: number[];
  timeDeltas: number[];
}

const stack = await startStack();
const dir = mkdtempSync(join(tmpdir(), 'fcrdns-profile-'));
try {
  const port = await freePort();
  writeFileSync(join(dir, 'c.conf'), `listen = 127.0.0.1:${port}\ndns_servers = ${stack.resolver}\nmode = strict\nmax_connections = 10000\n`);
  const devnull = openSync(process.env.DAEMON_OUT ?? '/dev/null', 'w');
  const child = spawn(process.execPath, [...NODE_FLAGS, '--cpu-prof', '--cpu-prof-dir', dir, BUNDLE, '--config', join(dir, 'c.conf')], {
    stdio: ['ignore', devnull, 'inherit'],
  });
  for (;;) {
    const up = await new Promise<boolean>((resolve) => {
      const socket = net.connect(port, '127.0.0.1', () => resolve(socket.destroy() !== undefined));
      socket.once('error', () => resolve(false));
    });
    if (up) break;
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
  const loadgen = (requests: number, workload: object) =>
    run(process.execPath, ['--import', 'tsx', join(import.meta.dirname, 'loadgen.ts'), JSON.stringify({ port, connections: CONNECTIONS, requests, workload })]);
  await loadgen(6000, COLD ? { kind: 'cold', offset: 0 } : { kind: 'hot', pool: 3000 });
  const { stdout } = await loadgen(REQUESTS, COLD ? { kind: 'cold', offset: 6000 } : { kind: 'hot', pool: 3000 });
  const exited = new Promise((resolve) => child.once('exit', resolve));
  child.kill('SIGTERM');
  await exited;
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
  console.log(`load: ${stdout.trim()}`);
  console.log(`profile: ${(total / 1e6).toFixed(2)} s sampled; self time per function:`);
  for (const [key, us] of [...byFunction].sort((a, b) => b[1] - a[1]).slice(0, 45)) {
    console.log(`${((100 * us) / total).toFixed(1).padStart(5)}%  ${(us / REQUESTS).toFixed(2).padStart(6)} µs/req  ${key}`);
  }
  console.log(`profile file: ${join(dir, file)}`);
} finally {
  await stack.stop();
}
