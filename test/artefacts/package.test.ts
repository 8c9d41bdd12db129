/**
 * Installing it the way mail software is installed, each artefact checked by its own
 * ecosystem's tool: the manual pages by `mandoc -T lint`, the Debian package by `lintian` and by
 * dpkg itself (install, upgrade over a previous build with an edited config, remove, purge) in a
 * throwaway root — copy-on-write overlays of /usr, /etc and /var in a private mount namespace, so
 * the host's dpkg database and files never change — and the packaged unit starting the packaged
 * daemon under a private systemd; the npm package installed into a clean prefix.
 */
import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import t from 'tap';
import { commandPage, confPage } from '../../scripts/man.js';
import { buildDeb, packagedUnit } from '../../scripts/package-deb.js';
import { CONFIG_KEYS, defaultValues, KEY_DOCS } from '../../src/config/config.js';
import { bundleMissing } from '../helpers/bundle.js';
import { freePort } from '../helpers/knot.js';
import { bootPrivateSystemd, systemdMissing } from '../helpers/private-systemd.js';
import { hasCommand, whenAvailable } from '../helpers/requirements.js';

const run = promisify(execFile);
const root = join(fileURLToPath(new URL('.', import.meta.url)), '..', '..');
const { version } = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as { version: string };

const missing = (...commands: string[]) => {
  const absent = commands.filter((command) => !hasCommand(command));
  return absent.length > 0 ? `missing: ${absent.join(', ')} (apt-get install mandoc lintian dpkg-dev; .ci/run installs them)` : undefined;
};

await whenAvailable(missing('mandoc'), 'manual pages', async () => {
  await t.test('the manual pages: every config key with its default, every command; mandoc -T lint finds nothing', async (t) => {
    const dir = mkdtempSync(join(tmpdir(), 'fcrdns-man-'));
    const conf = confPage('2026-12-03');
    const command = commandPage('2026-12-03');
    writeFileSync(join(dir, 'fcrdns-policyd.conf.5'), conf);
    writeFileSync(join(dir, 'fcrdns-policyd.8'), command);
    const defaults = defaultValues();
    for (const key of CONFIG_KEYS) {
      t.ok(KEY_DOCS[key]?.meaning, `${key} has its entry in the key table's docs`);
      t.match(conf, new RegExp(`^\\.B ${key.replace(/-/g, '\\\\-')}$`, 'm'), `${key} is in fcrdns-policyd.conf(5)`);
      const shown = KEY_DOCS[key].defaultText ?? (defaults[key] === '' ? 'empty' : defaults[key]);
      t.ok(conf.replace(/\\-/g, '-').replace(/\n/g, ' ').includes(`Default: ${shown}.`), `${key}: its default (${shown})`);
    }
    for (const word of ['check', 'config', 'report', 'replay', 'SIGHUP', 'SIGTERM', 'EXIT STATUS', '78', '/etc/fcrdns\\-policyd/fcrdns\\-policyd.conf']) {
      t.ok(command.includes(word), `fcrdns-policyd(8) says ${word}`);
    }
    const lint = await run('mandoc', ['-T', 'lint', '-W', 'all', join(dir, 'fcrdns-policyd.8'), join(dir, 'fcrdns-policyd.conf.5')]).then(
      (result) => result.stdout + result.stderr,
      (error: { stdout?: string; stderr?: string }) => `${error.stdout ?? ''}${error.stderr ?? ''}`,
    );
    t.equal(lint, '', 'mandoc -T lint -W all: no message');
  });
});

await whenAvailable(missing('dpkg-deb', 'lintian', 'unshare') ?? bundleMissing(), 'the Debian package', async () => {
  const out = mkdtempSync(join(tmpdir(), 'fcrdns-deb-'));
  const deb = buildDeb(out);
  const previous = buildDeb(join(out, 'previous'), '0.1.9');

  await t.test('lintian: no error and no warning', async (t) => {
    const result = await run('lintian', [deb]).then(
      (r) => ({ code: 0, text: r.stdout + r.stderr }),
      (error: { code?: number; stdout?: string; stderr?: string }) => ({ code: error.code ?? 1, text: `${error.stdout ?? ''}${error.stderr ?? ''}` }),
    );
    const tags = result.text.split('\n').filter((line) => /^[EW]: /.test(line));
    t.same(tags, [], 'no E: or W: tag');
    t.equal(result.code, 0);
    const info = await run('dpkg-deb', ['-f', deb]);
    t.match(info.stdout, /^Package: fcrdns-policyd$/m);
    t.match(info.stdout, /^Architecture: all$/m);
    t.match(info.stdout, /^Depends: nodejs \(>= 18\.19\)$/m);
    t.equal((await run('dpkg-deb', ['-I', deb, 'conffiles'])).stdout, '/etc/fcrdns-policyd/fcrdns-policyd.conf\n', 'the config is a conffile');
    const contents = (await run('dpkg-deb', ['-c', deb])).stdout;
    for (const page of ['README.md', ...readdirSync(join(root, 'docs')).filter((name) => name.endsWith('.md')).map((name) => `docs/${name}`)]) {
      t.match(contents, ` ./usr/share/doc/fcrdns-policyd/${page}.gz\n`, `${page} is in /usr/share/doc, gzipped`);
    }
  });

  await t.test('install, upgrade over a previous build with an edited config, remove, purge — in a throwaway root', async (t) => {
    const work = mkdtempSync(join(tmpdir(), 'fcrdns-root-'));
    const script = join(work, 'lifecycle.sh');
    const unitLink = '/etc/systemd/system/multi-user.target.wants/fcrdns-policyd.service';
    writeFileSync(
      script,
      [
        'set -e',
        // Copy-on-write: dpkg writes into the uppers; the host's /usr, /etc and /var are untouched.
        ...['usr', 'etc', 'var'].map((dir) => `mkdir -p ${work}/${dir}.up ${work}/${dir}.work && mount -t overlay overlay -o lowerdir=/${dir},upperdir=${work}/${dir}.up,workdir=${work}/${dir}.work /${dir}`),
        // No systemd runs here: the scripts must skip systemctl, as in a chroot.
        'mount -t tmpfs tmpfs /run',
        'say() { echo "@@ $*"; }',
        `dpkg -i '${previous}' >/dev/null 2>${work}/install.err`,
        `say first-install-message "$(tr '\\n' ' ' < ${work}/install.err)"`,
        'say installed-version "$(dpkg-query -W -f=\'${Version} ${Status}\' fcrdns-policyd)"',
        `say enabled "$(test -L ${unitLink} && echo yes || echo no)"`,
        'say launcher "$(/usr/sbin/fcrdns-policyd --version)"',
        'say config-valid "$(/usr/sbin/fcrdns-policyd config >/dev/null && echo yes)"',
        "printf 'mode = strict\\nreply_hint = edited by the admin\\n' >> /etc/fcrdns-policyd/fcrdns-policyd.conf",
        `dpkg -i '${deb}' >/dev/null 2>&1`,
        'say upgraded-version "$(dpkg-query -W -f=\'${Version}\' fcrdns-policyd)"',
        'say edit-survived "$(grep -c \'edited by the admin\' /etc/fcrdns-policyd/fcrdns-policyd.conf)"',
        'say upgraded-launcher "$(/usr/sbin/fcrdns-policyd --version)"',
        'say effective-mode "$(/usr/sbin/fcrdns-policyd config | grep \'^mode \')"',
        'say man "$(test -f /usr/share/man/man8/fcrdns-policyd.8.gz && test -f /usr/share/man/man5/fcrdns-policyd.conf.5.gz && echo yes)"',
        'dpkg -r fcrdns-policyd >/dev/null 2>&1',
        'say removed-status "$(dpkg-query -W -f=\'${Status}\' fcrdns-policyd)"',
        'say removed-program "$(test -e /usr/lib/fcrdns-policyd/fcrdns-policyd.js && echo present || echo gone)"',
        'say removed-config "$(test -e /etc/fcrdns-policyd/fcrdns-policyd.conf && echo kept || echo gone)"',
        'dpkg -P fcrdns-policyd >/dev/null 2>&1',
        'say purged-status "$(dpkg-query -W -f=\'${Status}\' fcrdns-policyd 2>/dev/null || echo unknown)"',
        'say purged-config "$(test -e /etc/fcrdns-policyd && echo kept || echo gone)"',
        `say purged-enablement "$(test -e ${unitLink} -o -L ${unitLink} && echo kept || echo gone)"`,
        '',
      ].join('\n'),
    );
    const { stdout } = await run('unshare', ['--mount', '--propagation', 'private', 'sh', script], { timeout: 120_000 });
    const said = Object.fromEntries(
      stdout
        .split('\n')
        .filter((line) => line.startsWith('@@ '))
        .map((line) => {
          const [key, ...rest] = line.slice(3).split(' ');
          return [key, rest.join(' ')];
        }),
    );
    t.match(said['installed-version'], /^0\.1\.9 install ok installed$/);
    t.equal(said.enabled, 'yes', 'enabled on first install');
    t.match(said['first-install-message'], /enabled but not started/, 'and not started: the admin reviews the config first');
    // The previous build differs in its package version only; the bundle says the source's.
    t.equal(said.launcher, `fcrdns-policyd ${version}`, 'the launcher runs the packaged bundle');
    t.equal(said['config-valid'], 'yes', 'the packaged config is valid');
    t.equal(said['upgraded-version'], version);
    t.equal(said['edit-survived'], '1', "the admin's edit survives the upgrade (conffile)");
    t.equal(said['effective-mode'], 'mode = strict');
    t.equal(said.man, 'yes');
    t.equal(said['removed-status'], 'deinstall ok config-files', 'remove keeps the config');
    t.equal(said['removed-program'], 'gone');
    t.equal(said['removed-config'], 'kept');
    t.match(said['purged-status'], /^(unknown|purge ok not-installed)$/, 'purge drops the package');
    t.equal(said['purged-config'], 'gone', 'and its configuration');
    t.equal(said['purged-enablement'], 'gone', 'and the enablement');
  });

  await whenAvailable(systemdMissing(), 'the packaged unit under systemd', async () => {
    await t.test('the packaged unit starts the packaged daemon under systemd, and it answers a policy request', async (t) => {
      const work = mkdtempSync(join(tmpdir(), 'fcrdns-pkgsd-'));
      await run('dpkg-deb', ['-x', deb, join(work, 'pkg')]);
      const port = await freePort();
      mkdirSync(join(work, 'etc', 'fcrdns-policyd'), { recursive: true });
      const packagedConfig = readFileSync(join(work, 'pkg', 'etc', 'fcrdns-policyd', 'fcrdns-policyd.conf'), 'utf8');
      writeFileSync(join(work, 'etc', 'fcrdns-policyd', 'fcrdns-policyd.conf'), `${packagedConfig}\nlisten = 127.0.0.1:${port}\n`);
      const unit = readFileSync(join(work, 'pkg', 'usr', 'lib', 'systemd', 'system', 'fcrdns-policyd.service'), 'utf8');
      t.equal(unit, packagedUnit(readFileSync(join(root, 'systemd', 'fcrdns-policyd.service'), 'utf8')));
      t.match(unit, /^ExecStart=\/usr\/sbin\/fcrdns-policyd --config \/etc\/fcrdns-policyd\/fcrdns-policyd\.conf$/m);
      const systemd = await bootPrivateSystemd(unit, [
        // The package's files over the host's, read-only, in this namespace only.
        `mount -t overlay overlay -o lowerdir=${work}/pkg/usr:/usr /usr`,
        `mount -t overlay overlay -o lowerdir=${work}/etc:/etc /etc`,
      ]);
      t.teardown(() => systemd.stop());
      const state = await systemd.until((s) => s.ActiveState === 'active' && s.MainPID !== '0', 'service active');
      t.equal(state.ActiveState, 'active');
      t.equal(await systemd.ask(port), 'DUNNO');
      const { stdout } = await systemd.inside('cat', `/proc/${state.MainPID}/cmdline`);
      t.match(stdout.split('\0').join(' '), /^\/usr\/bin\/node --max-old-space-size=96 .*\/usr\/lib\/fcrdns-policyd\/fcrdns-policyd\.js --config/, 'the launcher started node with the heap flags');
    });
  });
});

await whenAvailable(missing('npm') ?? bundleMissing(), 'the npm package', async () => {
  await t.test('npm pack → npm install -g into a clean prefix → fcrdns-policyd --version, no other dependency', async (t) => {
    const dir = mkdtempSync(join(tmpdir(), 'fcrdns-npm-'));
    const env = { ...process.env, npm_config_cache: join(dir, 'cache'), npm_config_update_notifier: 'false' };
    // The bundle is built (pretest); --ignore-scripts so pack does not rebuild it under the other tests.
    const { stdout } = await run('npm', ['pack', '--ignore-scripts', '--json', '--pack-destination', dir], { cwd: root, env });
    const [packed] = JSON.parse(stdout) as Array<{ filename: string; files: Array<{ path: string }> }>;
    t.ok(packed, 'npm pack made a package');
    const paths = (packed?.files ?? []).map((file) => file.path).sort();
    const docs = readdirSync(join(root, 'docs')).filter((name) => name.endsWith('.md')).map((name) => `docs/${name}`);
    t.same(paths, ['LICENSE', 'README.md', 'dist/fcrdns-policyd.js', 'dist/man/fcrdns-policyd.8', 'dist/man/fcrdns-policyd.conf.5', 'dist/package.json', ...docs.sort(), 'package.json']);
    const manifest = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as { dependencies?: Record<string, string> };
    t.same(manifest.dependencies ?? {}, {}, 'no run-time dependency: the bundle holds them');
    const prefix = join(dir, 'prefix');
    await run('npm', ['install', '-g', '--offline', '--no-audit', '--no-fund', '--prefix', prefix, join(dir, packed?.filename ?? '')], { env, timeout: 120_000 });
    const version = await run(join(prefix, 'bin', 'fcrdns-policyd'), ['--version'], { env: { PATH: '/usr/bin:/bin' } });
    t.equal(version.stdout.trim(), `fcrdns-policyd ${JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')).version}`);
    t.ok(readFileSync(join(prefix, 'share', 'man', 'man5', 'fcrdns-policyd.conf.5'), 'utf8').includes('.TH FCRDNS'), 'man pages linked into the prefix');
  });
});
