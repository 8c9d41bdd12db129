/**
 * Tests that need system packages (Knot, Postfix, swaks, namespaces) run only when those are
 * there. Locally a missing package skips loudly; under CI (CI=true) it fails, because .ci/run
 * installs everything and nothing may be skipped there.
 */
import t from 'tap';

export { hasCommand } from './commands.js';

/**
 * Run `body` when nothing is missing; otherwise skip (locally) or fail (in CI) with the reason.
 * A failure while starting servers inside `body` is reported as a test failure, so the
 * teardowns registered so far still run.
 */
export async function whenAvailable(missing: string | undefined, label: string, body: () => Promise<void>): Promise<void> {
  if (missing) {
    if (process.env.CI) t.fail(`${label} cannot run: ${missing}`);
    else t.test(`${label.toUpperCase()} SKIPPED: ${missing}`, { skip: true }, async () => undefined);
    return;
  }
  await body().catch((error: unknown) => t.fail(`setup failed: ${error instanceof Error ? error.message : String(error)}`));
}
