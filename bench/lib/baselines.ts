/** The baseline policy servers `npm run bench` starts beside the daemon, and how the same-work one is reported. */
import { spawn, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { freePort } from '../../test/helpers/knot.js';
import { waitForPort } from './processes.js';
import { shippedNodeFlags } from './shipped.js';
import { fmt } from './targets.js';

const BENCH = fileURLToPath(new URL('..', import.meta.url));

/** A baseline policy server (bench/null-server.ts, bench/floor-server.ts, …) on a free port: `script PORT [RESOLVER]`. */
export async function startBaselineServer(script: string, resolver?: string, nodeFlags: readonly string[] = []): Promise<{ port: number; child: ChildProcess }> {
  const port = await freePort();
  const args = [...nodeFlags, '--import', 'tsx', join(BENCH, script), String(port), ...(resolver === undefined ? [] : [resolver])];
  const child = spawn(process.execPath, args, { stdio: ['ignore', 'ignore', 'inherit'] });
  await waitForPort(port, child);
  return { port, child };
}

/** The same-work server's node flags: the unit's (SAME_WORK_FLAGS='' for node's defaults, as the floor's). */
export const SAME_WORK_FLAGS = process.env.SAME_WORK_FLAGS !== undefined ? process.env.SAME_WORK_FLAGS.split(' ').filter(Boolean) : shippedNodeFlags();

/**
 * Not a target: the same-work server (bench/same-work-server.ts: `base` plus a cache, a client
 * table, validation and a pino line per decision, done the plain way), CPU µs per request of each
 * side in the same runs, to read the targets' ratios against.
 */
export function sameWorkLine(base: string, sameWorkUs: number[], baseUs: number[], daemonUs: number[], sameWorkRps: number[]): string {
  const flags = SAME_WORK_FLAGS.length > 0 ? `node flags ${SAME_WORK_FLAGS.join(' ')}` : "node's default flags";
  const log = process.env.SAME_WORK_LOG === 'off' ? 'no log line' : 'a pino line';
  return (
    `  same-work server (${base} + cache, client table, validation, ${log}; ${flags}): ${fmt(sameWorkRps)} req/s, ` +
    `CPU ${fmt(sameWorkUs, 1)} µs per request; same-work/${base.replace('the ', '')} ${fmt(sameWorkUs.map((us, i) => us / (baseUs[i] ?? 1)), 2)}, ` +
    `daemon/same-work ${fmt(daemonUs.map((us, i) => us / (sameWorkUs[i] ?? 1)), 2)}`
  );
}
