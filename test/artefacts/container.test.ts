/**
 * The container image, built and run: the repository's Dockerfile built by podman (Debian's
 * package, no daemon) on a base made here — the cached trixie root (test/helpers/debian-roots.ts)
 * imported under the base's own name, since no image registry is reachable — with --pull=never
 * and --network none (the base holds the package lists and the .debs apt needs), in docker format
 * so the HEALTHCHECK is kept. Then run as shipped, inside a network namespace of the test's own
 * (loopback only, --network=host in it): the user's config mounted read-only, the image's non-root
 * user, a read-only root filesystem; a real policy request, the HEALTHCHECK, and SIGTERM → exit 0.
 */
import { execFile } from 'node:child_process';
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import t from 'tap';
import { buildDeb } from '../../scripts/package-deb.js';
import { bundleMissing } from '../helpers/bundle.js';
import { rootsMissing, rootTarball } from '../helpers/debian-roots.js';
import { knotMissing, startKnot } from '../helpers/knot.js';
import { hasCommand, whenAvailable } from '../helpers/requirements.js';
import { ZONES } from '../helpers/zones.js';
import { privateNetwork } from '../helpers/namespaces.js';

const run = promisify(execFile);
const checkout = resolve(fileURLToPath(new URL('.', import.meta.url)), '..', '..');
const { version } = JSON.parse(readFileSync(join(checkout, 'package.json'), 'utf8')) as { version: string };
/** The Dockerfile's default base, made locally from the cached trixie root. */
const BASE = 'docker.io/library/debian:trixie-slim';
const IMAGE = `localhost/fcrdns-policyd:${version}-test`;
/** CONTAINERS.md: crun refuses this machine's cgroup mode; limits within the machine's own. */
const PODMAN = ['--runtime', 'runc'];

function podmanMissing(): string | undefined {
  if (!hasCommand('podman')) return 'podman is not installed (apt-get install podman runc; .ci/run installs them)';
  if (!hasCommand('runc')) return 'runc is not installed (apt-get install runc)';
  return undefined;
}

const podman = (args: string[], timeout = 120_000) => run('podman', args, { timeout, maxBuffer: 1 << 24 });

/** The base image, imported from the cached root unless that very root is already imported. */
async function ensureBase(): Promise<void> {
  const tarball = rootTarball('trixie');
  const label = basename(tarball, '.tar');
  const imported = await podman(['image', 'inspect', BASE, '--format', '{{index .Labels "fcrdns.root"}}']).then(
    (result) => result.stdout.trim(),
    () => '',
  );
  if (imported !== label) await podman(['import', '--change', `LABEL fcrdns.root=${label}`, tarball, BASE], 300_000);
}

/** A build context as a checkout after `npm run package` has it (.dockerignore keeps only these). */
function buildContext(): string {
  const context = mkdtempSync(join(tmpdir(), 'fcrdns-image-'));
  mkdirSync(join(context, 'deploy', 'docker'), { recursive: true });
  buildDeb(join(context, 'dist'));
  for (const file of ['Dockerfile', '.dockerignore', 'deploy/docker/fcrdns-policyd.conf']) copyFileSync(join(checkout, file), join(context, file));
  return context;
}

await whenAvailable(podmanMissing() ?? rootsMissing() ?? knotMissing() ?? bundleMissing(), 'the container image', async () => {
  t.test('podman build of the Dockerfile on a local base, then run: non-root, read-only, a real request, HEALTHCHECK, SIGTERM → 0', { timeout: 400_000 }, async (t) => {
    await ensureBase();
    const context = buildContext();
    t.teardown(() => rmSync(context, { recursive: true, force: true }));
    const built = await podman(['build', ...PODMAN, '--pull=never', '--format', 'docker', '--network', 'none', '--build-arg', 'APT_UPDATE=no', '-t', IMAGE, context], 300_000);
    t.match(built.stdout, /Successfully tagged/, 'the image builds offline from the package');
    const healthcheck = JSON.parse((await podman(['image', 'inspect', IMAGE, '--format', '{{json .Config.Healthcheck}}'])).stdout) as { Test?: string[] };
    t.same(healthcheck.Test?.slice(0, 3), ['CMD', '/usr/sbin/fcrdns-policyd', 'query'], 'the HEALTHCHECK is kept (docker format)');

    const network = await privateNetwork();
    t.teardown(network.close);
    const knot = await startKnot(ZONES, { netns: network.path });
    t.teardown(() => knot.stop());
    const configDir = mkdtempSync(join(tmpdir(), 'fcrdns-image-conf-'));
    t.teardown(() => rmSync(configDir, { recursive: true, force: true }));
    const config = join(configDir, 'fcrdns-policyd.conf');
    writeFileSync(config, `listen = 127.0.0.1:10040\ndns_servers = 127.0.0.1:${knot.port}\n`);
    const name = `fcrdns-policyd-test-${process.pid}`;
    const inNetwork = (args: string[], timeout?: number) => run('nsenter', [`--net=${network.path}`, 'podman', ...args], { timeout: timeout ?? 60_000, maxBuffer: 1 << 22 });
    t.teardown(() => podman(['rm', '--force', name]).catch(() => undefined));
    const hardLimit = Number((await run('sh', ['-c', 'ulimit -Hn'])).stdout.trim()) || 1024;
    const files = Math.min(hardLimit, 65536);
    await inNetwork([
      'run', ...PODMAN, '--detach', '--name', name, '--network=host', '--read-only',
      '--ulimit', `nofile=${files}:${files}`, '--ulimit', 'nproc=4096:4096',
      '--volume', `${config}:/etc/fcrdns-policyd/fcrdns-policyd.conf:ro`, IMAGE,
    ]);
    const ask = (client: string) => inNetwork(['exec', name, '/usr/sbin/fcrdns-policyd', 'query', `client_address=${client}`]).then((r) => r.stdout, () => '');
    let passing = '';
    for (let tries = 0; tries < 50 && passing === ''; tries++) {
      passing = await ask('192.0.2.10');
      if (passing === '') await new Promise((wait) => setTimeout(wait, 200));
    }
    t.equal(passing, 'action=DUNNO\n', 'a forward-confirmed client passes');
    t.equal(await ask('192.0.2.200'), 'action=450 4.7.25 cannot find your hostname, [192.0.2.200]\n', 'a client without PTR: 450 4.7.25');
    const user = (await inNetwork(['exec', name, 'id', '-u'])).stdout.trim();
    t.equal(user, '65534', 'runs as nobody, not root');
    const write = await inNetwork(['exec', name, 'sh', '-c', 'touch /usr/lib/fcrdns-policyd/x 2>&1 || echo read-only']).then((r) => r.stdout, (e: { stdout?: string }) => e.stdout ?? '');
    t.match(write, /read-only/i, 'the root filesystem is read-only');
    const health = await inNetwork(['healthcheck', 'run', name]).then(() => 0, (e: { code?: number }) => e.code ?? 1);
    t.equal(health, 0, 'the HEALTHCHECK command passes');
    const logs = (await podman(['logs', name])).stdout;
    t.match(logs, /"msg":"started"/, 'JSON log on stdout');
    const stopping = Date.now();
    await inNetwork(['stop', '--time', '15', name], 30_000);
    const exitCode = (await podman(['inspect', name, '--format', '{{.State.ExitCode}}'])).stdout.trim();
    t.equal(exitCode, '0', 'SIGTERM: exit 0');
    t.ok(Date.now() - stopping < 15_000, `stopped within the stop timeout (${Date.now() - stopping} ms)`);
    t.match((await podman(['logs', name])).stdout, /"msg":"stopped"/, 'logged its stop');
  });
});
