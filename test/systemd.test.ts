/**
 * The shipped systemd unit under a real systemd: systemd boots as PID 1 of a private PID and
 * mount namespace with only the test's units (stub targets stand in for the system's, so no
 * system service — tmpfiles, getty, journald — ever runs), the bundle and a config sit on a
 * tmpfs at the unit's own paths, and the unit is the shipped file with only its --config path
 * changed. Proves: it starts with all its hardening and answers; a killed daemon is restarted
 * (Restart=on-failure); `systemctl reload` (SIGHUP) keeps the process; `systemctl stop` ends it
 * with exit 0.
 */
import { execFile, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import t from 'tap';
import { BUNDLE, bundleMissing } from './helpers/bundle.js';
import { freePort } from './helpers/knot.js';
import { PolicyClient } from './helpers/policy-client.js';
import { hasCommand, whenAvailable } from './helpers/requirements.js';

const run = promisify(execFile);
const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const SYSTEMD = '/lib/systemd/systemd';

function systemdMissing(): string | undefined {
  if (!existsSync(SYSTEMD)) return `${SYSTEMD} is missing (apt-get install systemd); .ci/run installs it`;
  const tools = ['unshare', 'nsenter', 'pgrep'].filter((tool) => !hasCommand(tool));
  if (tools.length > 0) return `missing: ${tools.join(', ')}`;
  if (process.getuid?.() !== 0) return 'booting systemd in a private namespace needs root';
  return undefined;
}

await whenAvailable(systemdMissing() ?? bundleMissing(), 'the systemd unit test', main);

async function main(): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'fcrdns-systemd-'));
  const units = join(dir, 'units');
  await run('mkdir', ['-p', units]);
  writeFileSync(join(units, 'fcrdns-test.target'), '[Unit]\nDescription=fcrdns-policyd unit test\nWants=fcrdns-policyd.service\n');
  for (const stub of ['sysinit.target', 'basic.target', 'shutdown.target']) {
    writeFileSync(join(units, stub), `[Unit]\nDescription=stub ${stub}\nDefaultDependencies=no\n`);
  }
  const shipped = readFileSync(join(root, 'systemd/fcrdns-policyd.service'), 'utf8');
  const unit = shipped.replace('--config /etc/fcrdns-policyd/fcrdns-policyd.conf', '--config /usr/local/lib/fcrdns-policyd/test.conf');
  t.not(unit, shipped, 'only the config path differs from the shipped unit');
  writeFileSync(join(units, 'fcrdns-policyd.service'), unit);
  const port = await freePort();
  const boot = join(dir, 'boot.sh');
  writeFileSync(
    boot,
    [
      'set -e',
      // Private to this mount namespace: the host's /run and /usr/local/lib are untouched.
      'mount -t tmpfs tmpfs /run',
      'mount -t tmpfs tmpfs /usr/local/lib',
      'mkdir -p /usr/local/lib/fcrdns-policyd',
      `cp '${BUNDLE}' /usr/local/lib/fcrdns-policyd/fcrdns-policyd.js`,
      `printf 'listen = 127.0.0.1:${port}\\n' > /usr/local/lib/fcrdns-policyd/test.conf`,
      `exec ${SYSTEMD} --system --unit=fcrdns-test.target --log-target=console --log-level=warning`,
      '',
    ].join('\n'),
  );
  const unshare = spawn('unshare', ['--pid', '--fork', '--mount', '--mount-proc', '--propagation', 'private', 'sh', boot], {
    env: { ...process.env, SYSTEMD_UNIT_PATH: units },
    stdio: 'ignore',
    detached: true,
  });
  let systemdPid: number | undefined;
  t.teardown(async () => {
    // Killing PID 1 of the namespace ends everything in it.
    if (systemdPid) await run('kill', ['-9', String(systemdPid)]).catch(() => undefined);
    unshare.kill('SIGKILL');
  });
  const deadline = Date.now() + 30_000;
  while (!systemdPid && Date.now() < deadline) {
    const found = await run('pgrep', ['-P', String(unshare.pid), '-f', 'systemd --system']).then(
      (result) => Number(result.stdout.trim().split('\n')[0]),
      () => undefined,
    );
    if (found) systemdPid = found;
    else await new Promise((resolve) => setTimeout(resolve, 100));
  }
  if (!systemdPid) throw new Error('systemd did not start in its namespace');
  const inside = (...command: string[]) => run('nsenter', ['-t', String(systemdPid), '-p', '-m', '--', ...command], { timeout: 15_000 });
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
  const ask = async () => {
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

  await t.test('starts under systemd with the unit hardening and answers', async (t) => {
    const state = await until((s) => s.ActiveState === 'active' && s.MainPID !== '0', 'service active');
    t.equal(state.ActiveState, 'active');
    t.equal(await ask(), 'DUNNO');
  });

  await t.test('a killed daemon is restarted (Restart=on-failure)', async (t) => {
    const before = await show();
    await inside('kill', '-9', before.MainPID ?? '0');
    const after = await until((s) => s.ActiveState === 'active' && s.MainPID !== before.MainPID && s.MainPID !== '0', 'restarted');
    t.equal(after.NRestarts, '1');
    t.equal(await ask(), 'DUNNO', 'the new process answers');
  });

  await t.test('systemctl reload sends SIGHUP and keeps the process', async (t) => {
    const before = await show();
    await inside('systemctl', 'reload', 'fcrdns-policyd');
    const after = await show();
    t.equal(after.MainPID, before.MainPID);
    t.equal(after.ActiveState, 'active');
    t.equal(await ask(), 'DUNNO');
  });

  await t.test('systemctl stop ends it with exit status 0', async (t) => {
    await inside('systemctl', 'stop', 'fcrdns-policyd');
    const state = await until((s) => s.ActiveState === 'inactive', 'stopped');
    t.equal(state.Result, 'success');
    t.equal(state.ExecMainStatus, '0');
  });
}
