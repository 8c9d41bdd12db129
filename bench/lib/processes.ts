/** Processes the benches start: the daemon as shipped, the load generator, and waiting on them. */
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { mkdtempSync, openSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { BUNDLE } from '../../test/helpers/bundle.js';
import { freePort } from '../../test/helpers/knot.js';
import { shippedNodeFlags } from './shipped.js';
import type { Workload } from './workload.js';

const run = promisify(execFile);
const BENCH = join(fileURLToPath(new URL('.', import.meta.url)), '..');

/** What the load generator prints: throughput, latency percentiles (ms), errors, action mix. */
export interface LoadResult {
  rps: number;
  p50: number;
  p90?: number;
  p99: number;
  p999?: number;
  errors: number;
  actions?: Record<string, number>;
  /** Share of the measured requests whose client had not been sent before. */
  newClientShare?: number;
  /** p99 of the requests whose client was sent before, and p50 / p99 of those for a new client. */
  p99Known?: number;
  p50New?: number;
  p99New?: number;
}

/** Run a bench script with tsx in its own process; resolves with its stdout. */
export async function tsx(script: string, ...scriptArgs: string[]): Promise<string> {
  const { stdout } = await run(process.execPath, ['--import', 'tsx', join(BENCH, script), ...scriptArgs], { maxBuffer: 1 << 24, timeout: 600_000 });
  return stdout;
}

/** The Postfix-like load generator (bench/loadgen.ts) against a port. */
export async function loadgen(
  port: number,
  connections: number,
  requests: number,
  workload: Workload,
  extra: { warmup?: number; pipeline?: number; rate?: number } = {},
): Promise<LoadResult> {
  return JSON.parse(await tsx('loadgen.ts', JSON.stringify({ port, connections, requests, workload, ...extra }))) as LoadResult;
}

/** Resolves once something accepts connections on 127.0.0.1:port; rejects if the process exits first. */
export async function waitForPort(port: number, child: ChildProcess): Promise<void> {
  for (;;) {
    if (child.exitCode !== null) throw new Error(`process exited (${child.exitCode})`);
    const ok = await new Promise<boolean>((resolve) => {
      const socket = net.connect(port, '127.0.0.1', () => {
        socket.destroy();
        resolve(true);
      });
      socket.once('error', () => resolve(false));
    });
    if (ok) return;
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

/** SIGTERM, then wait for the exit. */
export async function stop(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null) return;
  const exited = new Promise((resolve) => child.once('exit', resolve));
  child.kill('SIGTERM');
  await exited;
}

/**
 * The daemon as shipped: the bundle with the launchers' node flags (plus `extraNodeFlags`),
 * default logging (info, one line per decision) to /dev/null, strict mode, on a free port;
 * `bundle` another build than dist/.
 */
export async function startShippedDaemon(
  resolver: string,
  options: { extraConfig?: string; extraNodeFlags?: readonly string[]; dir?: string; bundle?: string } = {},
): Promise<{ port: number; child: ChildProcess; dir: string }> {
  const port = await freePort();
  const dir = options.dir ?? mkdtempSync(join(tmpdir(), 'fcrdns-bench-'));
  const config = join(dir, 'bench.conf');
  writeFileSync(config, `listen = 127.0.0.1:${port}\ndns_servers = ${resolver}\nmode = strict\nmax_connections = 10000\n${options.extraConfig ?? ''}`);
  const devnull = openSync('/dev/null', 'w');
  const child = spawn(process.execPath, [...shippedNodeFlags(), ...(options.extraNodeFlags ?? []), options.bundle ?? BUNDLE, '--config', config], {
    stdio: ['ignore', devnull, 'inherit'],
  });
  await waitForPort(port, child);
  return { port, child, dir };
}
