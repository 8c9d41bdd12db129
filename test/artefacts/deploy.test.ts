/**
 * The deployment kit: the example config cannot drift from the code's defaults, the systemd
 * unit verifies and is hardened, and the bundle alone (no node_modules) answers, also to the
 * image's HEALTHCHECK command. The image itself is built and run by test/artefacts/container.test.ts.
 */
import { execFile, execFileSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import t from 'tap';
import { CONFIG_KEYS, defaultConfig, defaultValues, parseConfig } from '../../src/config/config.js';
import { BUNDLE, bundleMissing, startBundle } from '../helpers/bundle.js';

const run = promisify(execFile);
const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const read = (path: string) => readFileSync(join(root, path), 'utf8');

t.test('deploy/fcrdns-policyd.conf lists every key once, with the built-in default', async (t) => {
  const text = read('deploy/fcrdns-policyd.conf');
  const defaults = defaultValues();
  const seen: string[] = [];
  for (const match of text.matchAll(/^#([a-z0-9_]+) =(?: (.*))?$/gm)) {
    const key = match[1] ?? '';
    seen.push(key);
    t.equal(match[2] ?? '', defaults[key as keyof typeof defaults], `${key} shows its default`);
  }
  t.same([...seen].sort(), [...CONFIG_KEYS].sort(), 'every key, once');
  t.same(parseConfig(text, 'deploy').effective, defaultConfig().effective, 'as shipped (all commented) it is the defaults');
  const uncommented = text.replace(/^#([a-z0-9_]+ =.*)$/gm, '$1');
  t.same(parseConfig(uncommented, 'deploy').effective, defaultConfig().effective, 'uncommented it is still the defaults');
});

t.test('Postfix snippets wire the check after reject_unauth_destination, failing open', async (t) => {
  const main = read('deploy/postfix/main.cf.snippet');
  t.match(main, /reject_unauth_destination,\n\s+check_policy_service \{ inet:127\.0\.0\.1:10040, timeout=10s, default_action=DUNNO \}/);
  t.match(main, /check_policy_service \{ unix:private\/fcrdns-policyd, timeout=10s, default_action=DUNNO \}/);
  t.match(read('deploy/postfix/master.cf.snippet'), /listen = unix:\/var\/spool\/postfix\/private\/fcrdns-policyd/);
  t.match(read('README.md'), /check_policy_service \{ inet:127\.0\.0\.1:10040, timeout=10s, default_action=DUNNO \}/);
  parseConfig(read('deploy/docker/fcrdns-policyd.conf'), 'docker.conf');
});

t.test('systemd unit: verifies, reloads with SIGHUP, restarts, and is hardened', async (t) => {
  const unit = read('systemd/fcrdns-policyd.service');
  t.match(unit, /^ExecReload=\/bin\/kill -HUP \$MAINPID$/m);
  t.match(unit, /^Restart=on-failure$/m);
  t.match(unit, /^LimitNOFILE=\d+$/m);
  t.match(unit, /^DynamicUser=yes$/m);
  for (const setting of ['NoNewPrivileges=yes', 'ProtectSystem=strict', 'ProtectHome=yes', 'PrivateTmp=yes', 'PrivateDevices=yes', 'CapabilityBoundingSet=', 'SystemCallFilter=@system-service']) {
    t.match(unit, new RegExp(`^${setting.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}$`, 'm'), setting);
  }
  t.match(unit, /^RestrictAddressFamilies=AF_INET AF_INET6 AF_UNIX$/m);
  t.notMatch(unit, /^MemoryDenyWriteExecute=yes/m, "V8's JIT needs writable-executable memory");
  let analyze = true;
  try {
    execFileSync('systemd-analyze', ['--version'], { stdio: 'ignore' });
  } catch {
    analyze = false;
  }
  if (!analyze) {
    if (process.env.CI) t.fail('systemd-analyze is missing (apt-get install systemd); .ci/run installs it');
    else t.comment('SYSTEMD-ANALYZE CHECKS NOT RUN: systemd-analyze is missing');
    return;
  }
  const dir = mkdtempSync(join(tmpdir(), 'fcrdns-unit-'));
  const path = join(dir, 'fcrdns-policyd.service');
  copyFileSync(join(root, 'systemd/fcrdns-policyd.service'), path);
  const verify = await run('systemd-analyze', ['verify', path]).then(
    (result) => ({ code: 0, output: result.stdout + result.stderr }),
    (error: { code?: number; stdout?: string; stderr?: string }) => ({ code: error.code ?? 1, output: `${error.stdout ?? ''}${error.stderr ?? ''}` }),
  );
  t.equal(verify.code, 0, `systemd-analyze verify: ${verify.output.trim() || 'clean'}`);
  const security = await run('systemd-analyze', ['security', '--offline=true', path]).then(
    (result) => result.stdout,
    (error: { stdout?: string }) => error.stdout ?? '',
  );
  const exposure = Number(/Overall exposure level for fcrdns-policyd\.service: ([\d.]+)/.exec(security)?.[1]);
  t.ok(exposure < 2.0, `systemd-analyze security exposure ${exposure} (goal: under 2.0)`);
  t.comment(`systemd-analyze security exposure: ${exposure}`);
});

t.test('every launcher starts node with the same heap flags', async (t) => {
  const unit = /^ExecStart=\/usr\/bin\/node ((?:--\S+ )+)\S+fcrdns-policyd\.js/m.exec(read('systemd/fcrdns-policyd.service'))?.[1]?.trim();
  t.match(unit, /--max-old-space-size=\d+/);
  // The image runs the package's launcher, which reads the same flags from the unit (scripts/package-deb.ts).
  t.match(read('Dockerfile'), /^ENTRYPOINT \["\/usr\/sbin\/fcrdns-policyd"\]$/m, 'Dockerfile ENTRYPOINT: the launcher');
  const start = (JSON.parse(read('package.json')) as { scripts: { start: string } }).scripts.start;
  t.match(start, `node ${unit} dist/fcrdns-policyd.js`, 'npm start');
});

t.test('Dockerfile: the Debian package on a Debian base, non-root, health-checked (built and run by test/artefacts/container.test.ts)', async (t) => {
  const dockerfile = read('Dockerfile');
  t.match(dockerfile, /^ARG BASE=debian:\S+-slim$/m, 'the base is an ARG');
  t.equal([...dockerfile.matchAll(/^FROM /gm)].length, 1, 'one stage: nothing is built in the image');
  t.match(dockerfile, /apt-get install -y --no-install-recommends "\$deb"/);
  t.notMatch(dockerfile.replace(/^#.*$/gm, ''), /\bnpm\b/, 'no npm registry needed');
  t.match(dockerfile, /^USER nobody$/m);
  t.match(dockerfile, /^EXPOSE 10040$/m);
  t.match(dockerfile, /HEALTHCHECK .*\n\s+CMD \["\/usr\/sbin\/fcrdns-policyd", "query", /);
  t.match(read('.dockerignore'), /^!dist\/fcrdns-policyd_\*_all\.deb$/m, 'the build context holds the package');
  for (const match of dockerfile.matchAll(/^COPY (?!--from)(.+) \S+$/gm)) {
    for (const source of (match[1] ?? '').split(' ').filter((path) => !path.includes('*'))) t.ok(existsSync(join(root, source)), `COPY source ${source} exists`);
  }
});

const missing = bundleMissing();
if (missing) {
  if (process.env.CI) t.fail(missing);
  else t.test(`BUNDLE-ALONE TEST SKIPPED: ${missing}`, { skip: true }, async () => undefined);
} else {
  t.test('the bundle alone, in an empty directory with no node_modules, starts and answers', async (t) => {
    const dir = mkdtempSync(join(tmpdir(), 'fcrdns-alone-'));
    const alone = join(dir, 'fcrdns-policyd.js');
    copyFileSync(BUNDLE, alone);
    let parent = dir;
    while (parent !== dirname(parent)) {
      t.notOk(existsSync(join(parent, 'node_modules')), `no node_modules in ${parent}`);
      parent = dirname(parent);
    }
    const version = execFileSync(process.execPath, [alone, '--version'], { cwd: dir, encoding: 'utf8' });
    t.match(version, /^fcrdns-policyd \d/);
    // Same start-up as the image: the copied bundle with a config file, answering a real request.
    const daemon = await startBundle('listen = 127.0.0.1:0\n', [], alone);
    t.teardown(() => daemon.stop());
    const liveConfig = join(dir, 'live.conf');
    writeFileSync(liveConfig, `listen = 127.0.0.1:${daemon.port}\n`);
    const health = await run(process.execPath, [alone, 'query', 'client_address=127.0.0.1', '--config', liveConfig], { cwd: dir });
    t.equal(health.stdout, 'action=DUNNO\n', 'the HEALTHCHECK command (query) gets a real answer');
    const deadConfig = join(dir, 'dead.conf');
    writeFileSync(deadConfig, 'listen = 127.0.0.1:1\n');
    const unhealthy = await run(process.execPath, [alone, 'query', 'client_address=127.0.0.1', '--config', deadConfig], { cwd: dir }).then(
      () => 0,
      (error: { code?: number }) => error.code ?? -1,
    );
    t.equal(unhealthy, 69, 'and reports a dead daemon as unhealthy (EX_UNAVAILABLE)');
  });
}
