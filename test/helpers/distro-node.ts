/**
 * The distributions' own Node.js builds, to run the shipped bundle on: Debian 12's nodejs 18.20
 * and Debian 13's 20.19 link the system c-ares, libuv, OpenSSL and ICU, which behave differently
 * from the upstream build this machine runs (test/distro-node-*.test.ts says where).
 *
 * `distroNode(release)` returns the path of an executable that acts as `node`: it enters a
 * private mount namespace, binds /tmp and the checkout into the release's root (so the bundle,
 * configs and unix sockets have the same paths inside), and execs the root's /usr/bin/node in a
 * chroot. Every step execs the next, so the PID a test holds is node's own and signals (SIGHUP,
 * SIGTERM) reach it; the network is the host's, so the tests' loopback DNS servers are reachable.
 * Debian's node cannot run outside its root: it loads built-in modules from /usr/share/nodejs.
 *
 * The root (nodejs installed offline from the cached tarball, test/helpers/debian-roots.ts) is
 * kept beside the tarball and made again only when the tarball changes.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { basename, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ROOT_CACHE, rootTarball, type Release } from './debian-roots.js';

const CHECKOUT = resolve(fileURLToPath(new URL('.', import.meta.url)), '..', '..');

/** Run a command inside a root, offline (its own network namespace: loopback only). */
export function inRootOffline(root: string, script: string): string {
  return execFileSync(
    'unshare',
    ['--net', '--mount', '--fork', 'sh', '-c', 'mount --rbind /dev "$0/dev" && mount -t proc proc "$0/proc" && exec chroot "$0" /bin/sh -c "$1"', root, script],
    { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] },
  );
}

/** The release's root with its nodejs installed, made once per tarball. */
export function nodeRoot(release: Release): string {
  const tarball = rootTarball(release);
  const root = join(ROOT_CACHE, 'nodes', basename(tarball, '.tar'));
  if (existsSync(join(root, 'usr', 'bin', 'node'))) return root;
  const building = `${root}.${process.pid}.partial`;
  rmSync(building, { recursive: true, force: true });
  mkdirSync(building, { recursive: true });
  execFileSync('tar', ['-C', building, '--numeric-owner', '-xpf', tarball]);
  inRootOffline(building, 'DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends nodejs >/dev/null');
  try {
    renameSync(building, root);
  } catch {
    // Another test process made it first: use that one.
    rmSync(building, { recursive: true, force: true });
  }
  return root;
}

/** An executable that runs the release's own node with the given arguments (see the file comment). */
export function distroNode(release: Release): string {
  const root = nodeRoot(release);
  const wrapper = join(root, '..', `node-${basename(root)}`);
  const mounts = [
    'mount --rbind /dev "$R/dev"',
    'mount -t proc proc "$R/proc"',
    'mount --bind /tmp "$R/tmp"',
    `mkdir -p "$R${CHECKOUT}" && mount --bind "${CHECKOUT}" "$R${CHECKOUT}"`,
  ].join(' && ');
  // unshare without --fork execs: the PID stays node's. chroot's cwd is /, so go back to ours.
  const script = String.raw`#!/bin/sh
# Runs ${release}'s own node (written by test/helpers/distro-node.ts).
R='${root}'
FCRDNS_CWD=$PWD
export R FCRDNS_CWD
# The test runner's NODE_OPTIONS (tap's process-info hook, built for this machine's node) are not the daemon's.
unset NODE_OPTIONS
exec unshare --mount --propagation private /bin/sh -c '${mounts} && exec chroot "$R" /bin/sh -c "cd \"\$FCRDNS_CWD\" && exec /usr/bin/node \"\$@\"" node "$@"' sh "$@"
`;
  const temporary = `${wrapper}.${process.pid}`;
  writeFileSync(temporary, script, { mode: 0o755 });
  renameSync(temporary, wrapper);
  return wrapper;
}
