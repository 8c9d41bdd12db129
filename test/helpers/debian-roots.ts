/**
 * Clean Debian roots for the install tests: minimal Debian 12 (bookworm) and Debian 13 (trixie)
 * systems made by mmdebstrap from Debian's own packages, cached as tarballs so `npm test` does
 * not rebuild them (about a minute each the first time; .ci/run warms the cache before the tests).
 *
 * Each root holds the release's package lists and the .debs of `nodejs` and its dependencies,
 * downloaded but not installed: a test then runs `apt-get install ./fcrdns-policyd_*.deb` in a
 * network namespace of its own (loopback only) and apt resolves the package's Depends from that
 * release alone, as it would on a stock machine, without the test reaching any other host.
 * The `-lintian` roots have the release's lintian installed, to check the package with each
 * release's own rules.
 *
 * The mirrors are read from this machine's apt sources (never written into the repository).
 * Run as a script to build what is missing: `tsx test/helpers/debian-roots.ts [ROOT...]`.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, renameSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { hasCommand } from './commands.js';

export type Release = 'bookworm' | 'trixie';
export type RootKind = Release | `${Release}-lintian`;
export const RELEASES: readonly Release[] = ['bookworm', 'trixie'];
export const ALL_ROOTS: readonly RootKind[] = ['bookworm', 'trixie', 'trixie-lintian'];

/** What each release ships (checked against the roots by test/artefacts/distro.test.ts). */
export const RELEASE_NAMES: Record<Release, string> = { bookworm: 'Debian 12', trixie: 'Debian 13' };

export const ROOT_CACHE = process.env.FCRDNS_ROOT_CACHE ?? '/var/cache/fcrdns-policyd-tests/roots';

/** The mmdebstrap arguments of one root; their hash names the tarball, so a new recipe rebuilds. */
function recipe(kind: RootKind, mirrors: { main: string; security: string }): string[] {
  const release = kind.replace(/-lintian$/, '') as Release;
  const common = ['--variant=apt', '--format=tar', '--include=ca-certificates'];
  const sources = [`deb ${mirrors.main} ${release} main`, `deb ${mirrors.main} ${release}-updates main`, `deb ${mirrors.security} ${release}-security main`];
  if (kind.endsWith('-lintian')) return [...common, '--include=lintian', release, '-', ...sources];
  return [
    ...common,
    // Keep the package lists and the downloaded .debs: the install test resolves from them offline.
    '--skip=cleanup/apt',
    '--customize-hook=chroot "$1" apt-get install --download-only -y --no-install-recommends nodejs',
    release,
    '-',
    ...sources,
  ];
}

/** The machine's Debian mirrors, from /etc/apt/sources.list.d/debian.sources (deb822). */
function machineMirrors(): { main: string; security: string } {
  const text = readFileSync('/etc/apt/sources.list.d/debian.sources', 'utf8');
  const uris = [...text.matchAll(/^URIs:\s*(\S+)/gm)].map((match) => match[1] as string);
  const main = uris.find((uri) => !uri.includes('security'));
  const security = uris.find((uri) => uri.includes('security'));
  if (!main || !security) throw new Error('/etc/apt/sources.list.d/debian.sources: no main and security URIs');
  return { main, security };
}

/** Why the roots cannot be used here, or undefined. */
export function rootsMissing(): string | undefined {
  if (process.getuid?.() !== 0) return 'the Debian root tests need root (chroot, namespaces)';
  for (const command of ['mmdebstrap', 'unshare', 'ip']) if (!hasCommand(command)) return `${command} is not installed (apt-get install mmdebstrap util-linux iproute2)`;
  if (!existsSync('/etc/apt/sources.list.d/debian.sources')) return 'no /etc/apt/sources.list.d/debian.sources to read the Debian mirrors from';
  return undefined;
}

/** The cached tarball of a root, built first when missing. */
export function rootTarball(kind: RootKind): string {
  const args = recipe(kind, machineMirrors());
  const hash = createHash('sha256').update(JSON.stringify(args)).digest('hex').slice(0, 12);
  const tarball = join(ROOT_CACHE, `${kind}-${hash}.tar`);
  if (existsSync(tarball)) return tarball;
  mkdirSync(ROOT_CACHE, { recursive: true });
  const partial = `${tarball}.${process.pid}.partial`;
  const started = Date.now();
  // stdout is the tarball; mmdebstrap's progress goes to stderr.
  const result = spawnSync('sh', ['-c', 'exec mmdebstrap --quiet "$@" > "$0"', partial, ...args], { stdio: ['ignore', 'ignore', 'pipe'], encoding: 'utf8' });
  if (result.status !== 0) {
    rmSync(partial, { force: true });
    throw new Error(`mmdebstrap ${kind} failed: ${result.stderr.slice(-2000)}`);
  }
  renameSync(partial, tarball);
  process.stderr.write(`# built ${tarball} in ${Math.round((Date.now() - started) / 1000)} s\n`);
  return tarball;
}

/** Extract a root into `dir` (a fresh directory per test: roots are never shared or reused). */
export function extractRoot(kind: RootKind, dir: string): string {
  mkdirSync(dir, { recursive: true });
  execFileSync('tar', ['-C', dir, '--numeric-owner', '-xpf', rootTarball(kind)]);
  return dir;
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const wanted = (process.argv.slice(2).length > 0 ? process.argv.slice(2) : ALL_ROOTS) as RootKind[];
  const missing = rootsMissing();
  if (missing) {
    console.error(`debian-roots: ${missing}`);
    process.exit(1);
  }
  for (const kind of wanted) console.log(rootTarball(kind));
}
