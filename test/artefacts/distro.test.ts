/**
 * The Debian package where mail servers run: a clean Debian 12 (bookworm, nodejs 18.20) and a
 * clean Debian 13 (trixie, nodejs 20.19) root made by mmdebstrap from Debian's own packages
 * (cached, test/helpers/debian-roots.ts). In each, as a new user would:
 *   apt-get install ./fcrdns-policyd_VERSION_all.deb resolves nodejs from that release alone;
 *   --version and the config dump run on that release's node;
 *   the daemon, started with the installed unit's ExecStart and the packaged config, answers a
 *   real policy request against a loopback DNS server (450 4.7.25 for a client without PTR);
 *   an upgrade over the previous build keeps an edited conffile; remove and purge leave what
 *   Debian policy says.
 * Everything runs in a network namespace of the test's own (loopback only): apt resolves from
 * the root's cached lists and .debs and reaches no mirror. Also: lintian of trixie on the
 * package (bookworm's is the host's, test/artefacts/package.test.ts), and the build scripts on the
 * floor's node (bookworm's 18.20) make the same bundle as this machine's node.
 */
import { execFile, spawn } from 'node:child_process';
import { copyFileSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import t from 'tap';
import { buildDeb } from '../../scripts/package-deb.js';
import { bundleMissing } from '../helpers/bundle.js';
import { extractRoot, RELEASE_NAMES, RELEASES, rootsMissing, type Release } from '../helpers/debian-roots.js';
import { distroNode } from '../helpers/distro-node.js';
import { knotMissing, startKnot } from '../helpers/knot.js';
import { privateNetwork } from '../helpers/namespaces.js';
import { whenAvailable } from '../helpers/requirements.js';
import { ZONES } from '../helpers/zones.js';

const run = promisify(execFile);
const checkout = resolve(fileURLToPath(new URL('.', import.meta.url)), '..', '..');
const { version } = JSON.parse(readFileSync(join(checkout, 'package.json'), 'utf8')) as { version: string };

/** The node each release ships (README "Install" says the same). */
const SHIPPED_NODE: Record<Release, RegExp> = { bookworm: /^18\.20\./, trixie: /^20\.19\./ };

/**
 * What a shell in a stock root has: nothing of the test runner's. tap adds its NODE_OPTIONS
 * (a hook built for this machine's node) to every child's environment, so the command unsets it too.
 */
const ROOT_ENV = { PATH: '/usr/sbin:/usr/bin:/sbin:/bin', LANG: 'C.UTF-8', HOME: '/root' };

/** A shell command inside the root, in the namespace, with /dev and /proc mounted. */
function rootCommand(netns: string, root: string, script: string, userspec?: string): [string, string[]] {
  const chroot = userspec ? `chroot --userspec=${userspec} "$0"` : 'chroot "$0"';
  return [
    'nsenter',
    [`--net=${netns}`, 'unshare', '--mount', '--propagation', 'private', 'sh', '-c', `unset NODE_OPTIONS; mount --rbind /dev "$0/dev" && mount -t proc proc "$0/proc" && exec ${chroot} /bin/sh -c "$1"`, root, script],
  ];
}

async function inRoot(netns: string, root: string, script: string): Promise<{ code: number; out: string }> {
  return run(...rootCommand(netns, root, `export DEBIAN_FRONTEND=noninteractive; ${script}`), { env: ROOT_ENV, maxBuffer: 1 << 24, timeout: 240_000 }).then(
    (result) => ({ code: 0, out: result.stdout + result.stderr }),
    (error: { code?: number; stdout?: string; stderr?: string }) => ({ code: typeof error.code === 'number' ? error.code : 1, out: `${error.stdout ?? ''}${error.stderr ?? ''}` }),
  );
}

/** The installed unit's ExecStart, as systemd would run it (no quoting in ours). */
function execStart(root: string): string[] {
  const unit = readFileSync(join(root, 'usr/lib/systemd/system/fcrdns-policyd.service'), 'utf8');
  const line = /^ExecStart=(.+)$/m.exec(unit)?.[1];
  if (!line) throw new Error('the installed unit has no ExecStart');
  return line.trim().split(/\s+/);
}

async function untilAnswered(ask: () => Promise<{ code: number; out: string }>, timeoutMs: number): Promise<{ code: number; out: string }> {
  const started = Date.now();
  for (;;) {
    const answer = await ask();
    if (answer.code === 0 || Date.now() - started > timeoutMs) return answer;
    await new Promise((wait) => setTimeout(wait, 200));
  }
}

function releaseTest(release: Release, deb: string, next: string): void {
  t.test(`${RELEASE_NAMES[release]} (${release}): apt-get install of the .deb, the daemon from the unit's command line, upgrade, remove, purge`, { timeout: 300_000 }, async (t) => {
    const root = extractRoot(release, mkdtempSync(join(tmpdir(), `fcrdns-${release}-`)));
    t.teardown(() => rmSync(root, { recursive: true, force: true }));
    const network = await privateNetwork();
    t.teardown(network.close);
    // The tests' DNS, on the namespace's loopback port 53, as the root's resolv.conf names it.
    const knot = await startKnot(ZONES, { port: 53, netns: network.path });
    t.teardown(() => knot.stop());
    writeFileSync(join(root, 'etc/resolv.conf'), 'nameserver 127.0.0.1\n');
    copyFileSync(deb, join(root, 'root/fcrdns-policyd.deb'));
    copyFileSync(next, join(root, 'root/fcrdns-policyd-next.deb'));
    const sh = (script: string) => inRoot(network.path, root, script);

    const installed = await sh('apt-get install -y --no-install-recommends ./root/fcrdns-policyd.deb');
    t.equal(installed.code, 0, `apt-get install ./fcrdns-policyd_${version}_all.deb succeeds offline from the release's lists\n${installed.out.slice(-1500)}`);
    const nodeVersion = (await sh("dpkg-query -W -f '${Version}' nodejs")).out;
    t.match(nodeVersion, SHIPPED_NODE[release], `with ${release}'s own nodejs (${nodeVersion})`);
    t.equal((await sh('fcrdns-policyd --version')).out, `fcrdns-policyd ${version}\n`, '--version on the release node');
    const dump = await sh('fcrdns-policyd config');
    t.equal(dump.code, 0, 'the packaged config is valid');
    t.match(dump.out, /^listen = 127\.0\.0\.1:10040$/m);

    // The daemon as the unit starts it (unprivileged, as DynamicUser would run it).
    const [command, args] = rootCommand(network.path, root, `exec ${execStart(root).join(' ')}`, 'nobody:nogroup');
    const daemon = spawn(command, args, { env: ROOT_ENV, stdio: ['ignore', 'pipe', 'pipe'] });
    let log = '';
    daemon.stdout?.on('data', (chunk: Buffer) => (log += chunk.toString()));
    daemon.stderr?.on('data', (chunk: Buffer) => (log += chunk.toString()));
    const exited = new Promise<number | null>((done) => daemon.once('exit', (code) => done(code)));
    t.teardown(() => daemon.kill('SIGKILL'));
    const passing = await untilAnswered(() => sh('fcrdns-policyd query client_address=192.0.2.10 helo_name=mail.example.com'), 15_000);
    t.equal(passing.out, 'action=DUNNO\n', `a forward-confirmed client passes\n${log.slice(-1000)}`);
    const noPtr = await sh('fcrdns-policyd query client_address=192.0.2.200');
    t.equal(noPtr.out, 'action=450 4.7.25 cannot find your hostname, [192.0.2.200]\n', 'a client without a PTR record: 450 4.7.25 (the packaged soft mode)');
    const logged = () => log.split('\n').find((line) => line.includes('"client_address":"192.0.2.200"') && line.includes('"msg":"decision"'));
    for (let waited = 0; !logged() && waited < 5000; waited += 100) await new Promise((wait) => setTimeout(wait, 100));
    t.match(logged(), /"result":"no_ptr"/, 'its decision line says no_ptr');
    daemon.kill('SIGTERM');
    t.equal(await exited, 0, 'SIGTERM: exit 0');

    const edited = await sh("sed -i 's/^#* *mode = .*/mode = monitor/' /etc/fcrdns-policyd/fcrdns-policyd.conf && grep -c '^mode = monitor' /etc/fcrdns-policyd/fcrdns-policyd.conf");
    t.equal(edited.out.trim(), '1', 'the admin edits the conffile');
    const upgraded = await sh("apt-get install -y --no-install-recommends ./root/fcrdns-policyd-next.deb >/dev/null 2>&1 && dpkg-query -W -f '${Version}' fcrdns-policyd");
    t.equal(upgraded.out, `${version}+1`, 'upgraded over the previous build');
    t.match(readFileSync(join(root, 'etc/fcrdns-policyd/fcrdns-policyd.conf'), 'utf8'), /^mode = monitor$/m, 'the edit survives the upgrade');

    t.equal((await sh('apt-get remove -y fcrdns-policyd')).code, 0, 'apt-get remove');
    t.notOk(existsSync(join(root, 'usr/lib/fcrdns-policyd/fcrdns-policyd.js')), 'remove: the program is gone');
    t.ok(existsSync(join(root, 'etc/fcrdns-policyd/fcrdns-policyd.conf')), 'remove: the configuration stays (Debian policy 10.7.3)');
    t.equal((await sh('apt-get purge -y fcrdns-policyd')).code, 0, 'apt-get purge');
    t.notOk(existsSync(join(root, 'etc/fcrdns-policyd')), 'purge: the configuration is gone');
    t.match((await sh("dpkg-query -W -f '${Status}' fcrdns-policyd 2>&1 || true")).out, /not-installed|no packages found/, 'purged');
  });
}

await whenAvailable(rootsMissing() ?? knotMissing() ?? bundleMissing(), 'the package in clean Debian roots', async () => {
  const out = mkdtempSync(join(tmpdir(), 'fcrdns-distro-deb-'));
  t.teardown(() => rmSync(out, { recursive: true, force: true }));
  const deb = buildDeb(out);
  const next = buildDeb(join(out, 'next'), `${version}+1`);
  for (const release of RELEASES) releaseTest(release, deb, next);

  t.test("lintian of Debian 13 (trixie): no error and no warning (bookworm's is the host's, test/artefacts/package.test.ts)", { timeout: 300_000 }, async (t) => {
    const root = extractRoot('trixie-lintian', mkdtempSync(join(tmpdir(), 'fcrdns-lintian-')));
    t.teardown(() => rmSync(root, { recursive: true, force: true }));
    copyFileSync(deb, join(root, 'root/fcrdns-policyd.deb'));
    const network = await privateNetwork();
    t.teardown(network.close);
    const result = await inRoot(network.path, root, 'lintian --version && lintian /root/fcrdns-policyd.deb');
    const tags = result.out.split('\n').filter((line) => /^[EW]: /.test(line));
    t.same(tags, [], `no E: or W: tag\n${result.out.slice(-1500)}`);
    t.equal(result.code, 0);
  });

  t.test("the build scripts on the floor's node (bookworm's nodejs 18.20) make the same bundle", { timeout: 300_000 }, async (t) => {
    const node = distroNode('bookworm');
    const built = mkdtempSync(join(tmpdir(), 'fcrdns-floor-build-'));
    t.teardown(() => rmSync(built, { recursive: true, force: true }));
    const options = { cwd: checkout, timeout: 120_000, maxBuffer: 1 << 22, env: { ...process.env, NODE_OPTIONS: '' } };
    const versionOut = await run(node, ['--version'], options);
    t.match(versionOut.stdout, /^v18\.20\./, `runs on ${versionOut.stdout.trim()}`);
    await run(node, ['scripts/build.mjs', built], options);
    await run(process.execPath, ['scripts/build.mjs', join(built, 'here')], options);
    t.ok(readFileSync(join(built, 'fcrdns-policyd.js')).equals(readFileSync(join(built, 'here', 'fcrdns-policyd.js'))), 'npm run build on Node 18 makes the very bundle this machine makes');
    await run(node, ['node_modules/tsx/dist/cli.mjs', 'scripts/man.ts', join(built, 'man')], options);
    t.ok(existsSync(join(built, 'man', 'fcrdns-policyd.conf.5')), 'the man pages are generated on Node 18');
    const debOut = await run(node, ['node_modules/tsx/dist/cli.mjs', 'scripts/package-deb.ts', join(built, 'deb')], options);
    t.match(debOut.stdout.trim(), /fcrdns-policyd_.+_all\.deb$/, 'npm run package on Node 18');
  });
});
