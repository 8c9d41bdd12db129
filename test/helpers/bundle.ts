/** Runs the built bundle (dist/fcrdns-policyd.js) as a real process and reads its JSON log lines. */
import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { shippedNodeFlags } from './shipped.js';

export const BUNDLE = resolve(fileURLToPath(new URL('.', import.meta.url)), '../../dist/fcrdns-policyd.js');

/**
 * The node that runs the bundle: this process's own, or FCRDNS_TEST_NODE (a distribution's build,
 * test/helpers/distro-node.ts; test/distro-node-*.test.ts runs the shipped-bundle tests with it).
 */
export const BUNDLE_NODE = process.env.FCRDNS_TEST_NODE || process.execPath;

/** A process's peak resident memory so far (VmHWM), in MB. */
export function peakRssMb(pid: number): number {
  return Number(/VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1] ?? 0) / 1024;
}

export function bundleMissing(): string | undefined {
  return existsSync(BUNDLE) ? undefined : `${BUNDLE} is missing: run "npm run build" (npm test does it first)`;
}

export type LogLine = Record<string, unknown> & { msg?: string; level?: string };

export interface RunningDaemon {
  child: ChildProcess;
  port: number;
  configPath: string;
  lines: LogLine[];
  stderr: () => string;
  /** Resolves with the first log line (from index `from`) that satisfies the predicate. */
  waitFor(predicate: (line: LogLine) => boolean, timeoutMs?: number, from?: number): Promise<LogLine>;
  /** Rewrite the config file and send SIGHUP; resolves on the daemon's answer line. */
  reload(configText: string): Promise<LogLine>;
  stop(signal?: NodeJS.Signals): Promise<number | null>;
}

/** `env`: variables added to the daemon's environment (NODE_EXTRA_CA_CERTS, …). */
export async function startBundle(configText: string, args: string[] = [], bundle = BUNDLE, env: Record<string, string> = {}): Promise<RunningDaemon> {
  const dir = mkdtempSync(join(tmpdir(), 'fcrdns-daemon-'));
  const configPath = join(dir, 'fcrdns-policyd.conf');
  writeFileSync(configPath, configText);
  // The daemon runs as shipped: the launchers' node flags (heap cap), unless
  // FCRDNS_BENCH_NODE_FLAGS names others (benchmark experiments; '' for none).
  const nodeArgs = shippedNodeFlags();
  const child = spawn(BUNDLE_NODE, [...nodeArgs, bundle, '--config', configPath, ...args], {
    cwd: dirname(bundle),
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, ...env },
  });
  const lines: LogLine[] = [];
  const waiters = new Set<() => void>();
  let partial = '';
  let stderr = '';
  child.stdout?.on('data', (chunk: Buffer) => {
    partial += chunk.toString();
    let newline;
    while ((newline = partial.indexOf('\n')) !== -1) {
      const line = partial.slice(0, newline);
      partial = partial.slice(newline + 1);
      try {
        lines.push(JSON.parse(line) as LogLine);
      } catch {
        lines.push({ msg: 'UNPARSABLE LOG LINE', raw: line });
      }
    }
    for (const waiter of waiters) waiter();
  });
  child.stderr?.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  child.once('exit', () => waiters.forEach((waiter) => waiter()));

  const waitFor = (predicate: (line: LogLine) => boolean, timeoutMs = 10_000, from = 0): Promise<LogLine> =>
    new Promise((resolve, reject) => {
      const check = (): boolean => {
        const found = lines.slice(from).find(predicate);
        if (found) {
          resolve(found);
          return true;
        }
        if (child.exitCode !== null) {
          reject(new Error(`daemon exited (${child.exitCode}): ${stderr}`));
          return true;
        }
        return false;
      };
      if (check()) return;
      const waiter = () => {
        if (check()) cleanup();
      };
      const timer = setTimeout(() => {
        cleanup();
        reject(new Error(`no matching log line in ${timeoutMs} ms; stderr: ${stderr}`));
      }, timeoutMs);
      const cleanup = () => {
        clearTimeout(timer);
        waiters.delete(waiter);
      };
      waiters.add(waiter);
    });

  const started = await waitFor((line) => line.msg === 'started');
  const listen = String(started.listen);
  const port = Number(listen.slice(listen.lastIndexOf(':') + 1));
  return {
    child,
    port,
    configPath,
    lines,
    stderr: () => stderr,
    waitFor,
    async reload(text: string) {
      const from = lines.length;
      writeFileSync(configPath, text);
      child.kill('SIGHUP');
      return waitFor((line) => line.msg === 'reloaded' || String(line.msg).startsWith('reload failed'), 10_000, from);
    },
    async stop(signal: NodeJS.Signals = 'SIGTERM') {
      if (child.exitCode === null) child.kill(signal);
      return exited;
    },
  };
}
