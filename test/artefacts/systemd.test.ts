/**
 * The shipped systemd unit under a real systemd: systemd boots as PID 1 of a private PID and
 * mount namespace with only the test's units (stub targets stand in for the system's, so no
 * system service — tmpfiles, getty, journald — ever runs), the bundle and a config sit on a
 * tmpfs at the unit's own paths, and the unit is the shipped file with only its --config path
 * changed. Proves: it starts with all its hardening and answers; a killed daemon is restarted
 * (Restart=on-failure); `systemctl reload` (SIGHUP) keeps the process; `systemctl stop` ends it
 * with exit 0.
 */
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import t from 'tap';
import { BUNDLE, bundleMissing } from '../helpers/bundle.js';
import { freePort } from '../helpers/knot.js';
import { bootPrivateSystemd, systemdMissing } from '../helpers/private-systemd.js';
import { whenAvailable } from '../helpers/requirements.js';

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');

await whenAvailable(systemdMissing() ?? bundleMissing(), 'the systemd unit test', main);

async function main(): Promise<void> {
  const shipped = readFileSync(join(root, 'systemd/fcrdns-policyd.service'), 'utf8');
  const unit = shipped.replace('--config /etc/fcrdns-policyd/fcrdns-policyd.conf', '--config /usr/local/lib/fcrdns-policyd/test.conf');
  t.not(unit, shipped, 'only the config path differs from the shipped unit');
  const port = await freePort();
  const systemd = await bootPrivateSystemd(unit, [
    // Private to this mount namespace: the host's /usr/local/lib is untouched.
    'mount -t tmpfs tmpfs /usr/local/lib',
    'mkdir -p /usr/local/lib/fcrdns-policyd',
    `cp '${BUNDLE}' /usr/local/lib/fcrdns-policyd/fcrdns-policyd.js`,
    `printf 'listen = 127.0.0.1:${port}\\n' > /usr/local/lib/fcrdns-policyd/test.conf`,
  ]);
  t.teardown(() => systemd.stop());
  const { inside, show, until } = systemd;
  const ask = () => systemd.ask(port);

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
