/**
 * The unix socket's path on disk: claimed only when nothing answers on it, bound under a
 * temporary name and renamed into place, and removed on stop only while it is still the socket
 * this process bound.
 *
 * Before (issue 24, item 7), a second instance unlinked the live socket and bound its own, and
 * whichever stopped first removed the path (libuv unlinks a pipe's bound name when it closes):
 * the survivor ran unreachable and said nothing. Binding under a private name means libuv only
 * ever removes that name; the real path is removed here, after checking it is ours.
 */
import { chmodSync, lstatSync, renameSync, unlinkSync, type Stats } from 'node:fs';
import net from 'node:net';
import { dirname, join } from 'node:path';
import { LIMITS } from '../config/limits.js';

/** The socket file this process bound: its device and inode. */
export interface BoundSocket {
  readonly dev: number;
  readonly ino: number;
}

/** The error that says another process serves the path (cli.ts turns a start error into exit 70). */
export function anotherListens(path: string): NodeJS.ErrnoException {
  return Object.assign(new Error(`another fcrdns-policyd listens on ${path}`), { code: 'EADDRINUSE' });
}

function statOrUndefined(path: string): Stats | undefined {
  try {
    return lstatSync(path);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw error;
  }
}

/**
 * True when a process accepts connections on the socket at `path`. ECONNREFUSED (a socket file
 * left by a process that is gone) is the only "no": a full accept queue (EAGAIN) or a slow
 * accept still means someone listens.
 */
function somethingAnswers(path: string): Promise<boolean> {
  return new Promise((resolve) => {
    const probe = net.connect(path);
    const done = (answers: boolean): void => {
      clearTimeout(timer);
      probe.destroy();
      resolve(answers);
    };
    const timer = setTimeout(() => done(true), LIMITS.socketProbeTimeoutMs);
    probe.once('connect', () => done(true));
    probe.once('error', (error: NodeJS.ErrnoException) => done(error.code !== 'ECONNREFUSED' && error.code !== 'ENOENT'));
  });
}

/**
 * Refuse a path another live process serves; leave anything that is not a socket alone (the
 * bind then fails with EADDRINUSE, as it should: the daemon removes nothing but sockets).
 */
export async function checkSocketPath(path: string): Promise<void> {
  const existing = statOrUndefined(path);
  if (existing?.isSocket() && (await somethingAnswers(path))) throw anotherListens(path);
}

/** Where to bind before the rename: the same directory (a rename stays on one file system). */
export function temporarySocketPath(path: string): string {
  return join(dirname(path), `.fcrdns-policyd.${process.pid}.sock`);
}

/**
 * Give the freshly bound socket its mode and move it onto `path` in one step (rename replaces a
 * stale socket atomically: there is no moment without a socket at the path, nor one with a
 * socket of the wrong mode). Returns what identifies it for removeIfOurs().
 */
export function moveIntoPlace(bound: string, path: string, mode: number): BoundSocket {
  chmodSync(bound, mode);
  const existing = statOrUndefined(path);
  if (existing && !existing.isSocket()) {
    unlinkSync(bound);
    throw Object.assign(new Error(`${path} exists and is not a socket`), { code: 'EADDRINUSE' });
  }
  renameSync(bound, path);
  const stats = lstatSync(path);
  return { dev: stats.dev, ino: stats.ino };
}

/** Remove the socket at `path` only if it is still the one this process bound. */
export function removeIfOurs(path: string, ours: BoundSocket): boolean {
  const current = statOrUndefined(path);
  if (!current || current.dev !== ours.dev || current.ino !== ours.ino) return false;
  unlinkSync(path);
  return true;
}
