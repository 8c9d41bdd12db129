/**
 * Whether a command is installed. Kept apart from requirements.ts, which imports tap: a script
 * that only needs this (test/helpers/debian-roots.ts, run by .ci/run before the tests) would
 * otherwise become a tap test itself, under tap's 30-second default timeout, and building the
 * Debian roots on a fresh machine takes longer than that.
 */
import { execFileSync } from 'node:child_process';

/** True when a command is on PATH. */
export function hasCommand(command: string): boolean {
  try {
    execFileSync('sh', ['-c', `command -v ${command}`], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}
