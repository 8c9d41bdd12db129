/**
 * A real systemd booted as PID 1 of a private PID and mount namespace with only the test's units
 * (stub targets stand in for the system's, so no system service — tmpfiles, getty, journald —
 * ever runs). `setup` is shell run inside the namespace before systemd starts (tmpfs and overlay
 * mounts that put the files under test at their real paths, invisible to the host).
 */
import { execFile, spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { PolicyClient } from './policy-client.js';
import { hasCommand } from './requirements.js';

const run = promisify(execFile);
export const SYSTEMD = '/lib/systemd/systemd';

export function systemdMissing(): string | undefined {
  if (!existsSync(SYSTEMD)) return `${SYSTEMD} is missing (apt-get install systemd); .ci/run installs it`;
  const tools = ['unshare', 'nsenter', 'pgrep'].filter((tool) => !hasCommand(tool));
  if (tools.length > 0) return `missing: ${tools.join(', ')}`;
  if (process.getuid?.() !== 0) return 'booting systemd in a private namespace needs root';
  return undefined;
}

export interface PrivateSystemd {
  /** Run a command in the namespace (systemctl, kill). */
  inside(...command: string[]): Promise<{ stdout: string }>;
  /** The service's ActiveState, MainPID, NRestarts, Result, ExecMainStatus. */
  show(): Promise<Record<string, string>>;
  until(predicate: (state: Record<string, string>) => boolean, what: string): Promise<Record<string, string>>;
  /** A policy request for 127.0.0.1 on `port`, retried while the daemon comes up; the reply. */
  ask(port: number): Promise<string>;
  stop(): Promise<void>;
}

/** Boot systemd with `unit` as fcrdns-policyd.service, wanted by the target it starts. */
export async function bootPrivateSystemd(unit: string, setup: readonly string[]): Promise<PrivateSystemd> {
  const dir = mkdtempSync(join(tmpdir(), 'fcrdns-systemd-'));
  const units = join(dir, 'units');
  mkdirSync(units);
  writeFileSync(join(units, 'fcrdns-test.target'), '[Unit]\nDescription=fcrdns-policyd unit test\nWants=fcrdns-policyd.service\n');
  for (const stub of ['sysinit.target', 'basic.target', 'shutdown.target']) {
    writeFileSync(join(units, stub), `[Unit]\nDescription=stub ${stub}\nDefaultDependencies=no\n`);
  }
  writeFileSync(join(units, 'fcrdns-policyd.service'), unit);
  const boot = join(dir, 'boot.sh');
  writeFileSync(
    boot,
    ['set -e', 'mount -t tmpfs tmpfs /run', ...setup, `exec ${SYSTEMD} --system --unit=fcrdns-test.target --log-target=console --log-level=warning`, ''].join('\n'),
  );
  const unshare = spawn('unshare', ['--pid', '--fork', '--mount', '--mount-proc', '--propagation', 'private', 'sh', boot], {
    env: { ...process.env, SYSTEMD_UNIT_PATH: units },
    stdio: 'ignore',
    detached: true,
  });
  let systemdPid: number | undefined;
  const deadline = Date.now() + 30_000;
  while (!systemdPid && Date.now() < deadline) {
    const found = await run('pgrep', ['-P', String(unshare.pid), '-f', 'systemd --system']).then(
      (result) => Number(result.stdout.trim().split('\n')[0]),
      () => undefined,
    );
    if (found) systemdPid = found;
    else await new Promise((resolve) => setTimeout(resolve, 100));
  }
  const stop = async () => {
    // Killing PID 1 of the namespace ends everything in it.
    if (systemdPid) await run('kill', ['-9', String(systemdPid)]).catch(() => undefined);
    unshare.kill('SIGKILL');
  };
  if (!systemdPid) {
    await stop();
    throw new Error('systemd did not start in its namespace');
  }
  const pid = systemdPid;
  const inside = (...command: string[]) => run('nsenter', ['-t', String(pid), '-p', '-m', '--', ...command], { timeout: 15_000 });
  const show = async (): Promise<Record<string, string>> => {
    const { stdout } = await inside('systemctl', 'show', '-p', 'ActiveState,MainPID,NRestarts,Result,ExecMainStatus', 'fcrdns-policyd');
    return Object.fromEntries(stdout.trim().split('\n').map((line) => line.split('=') as [string, string]));
  };
  const until = async (predicate: (state: Record<string, string>) => boolean, what: string): Promise<Record<string, string>> => {
    const end = Date.now() + 20_000;
    for (;;) {
      const state = await show().catch(() => ({}) as Record<string, string>);
      if (predicate(state)) return state;
      if (Date.now() > end) throw new Error(`${what}: last state ${JSON.stringify(state)}`);
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  };
  /** Type=simple is "active" once forked; the daemon listens a moment later. */
  const ask = async (port: number) => {
    const end = Date.now() + 10_000;
    let client: PolicyClient | undefined;
    while (!client) {
      client = await PolicyClient.connect({ port }).catch(async (error: unknown) => {
        if (Date.now() > end) throw error;
        await new Promise((resolve) => setTimeout(resolve, 50));
        return undefined;
      });
    }
    try {
      return await client.ask({ client_address: '127.0.0.1' });
    } finally {
      client.close();
    }
  };
  return { inside, show, until, ask, stop };
}
