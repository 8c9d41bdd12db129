/**
 * (test/artefacts/distro-node-bookworm.test.ts and test/artefacts/distro-node-trixie.test.ts call this.)
 * The shipped-bundle tests once more on the distributions' own Node builds: Debian 12's nodejs
 * 18.20 (the runtime floor, system c-ares 1.18 and libuv 1.44) and Debian 13's 20.19 (system
 * c-ares 1.34, libuv 1.50, OpenSSL 3.5). They start dist/fcrdns-policyd.js with FCRDNS_TEST_NODE
 * (test/helpers/distro-node.ts), so an API newer than the floor or a library that behaves
 * differently fails here, not at a user's. Where the builds truly differ, the test says so and
 * the README's "Where the Node builds differ" explains it.
 */
import { execFile } from 'node:child_process';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import t from 'tap';
import { bundleMissing } from './bundle.js';
import { RELEASE_NAMES, rootsMissing, type Release } from './debian-roots.js';
import { distroNode } from './distro-node.js';
import { knotMissing } from './knot.js';
import { redisMissing } from './redis.js';
import { whenAvailable } from './requirements.js';

const run = promisify(execFile);
const checkout = resolve(fileURLToPath(new URL('.', import.meta.url)), '..', '..');

/**
 * The tests that run the bundle as a daemon over real DNS, with its signals and memory bound.
 * The commands (--version, config, query) run on each release's node in test/artefacts/distro.test.ts.
 */
const SHIPPED_BUNDLE_TESTS = [
  'test/integration/integration.test.ts',
  'test/integration/dns-faults.test.ts',
  'test/integration/hostile-zone.test.ts',
  'test/integration/lifecycle.test.ts',
];
/** The throttle action's shared store: node-redis (engines >= 18.19) against a real redis-server, rediss:// included. */
const THROTTLE_TEST = 'test/integration/throttle.test.ts';

/** Per build: its own node, and the RSS budget of the hostile-zone flood (README). */
const BUILDS: Record<Release, { budgetMb: number }> = { bookworm: { budgetMb: 150 }, trixie: { budgetMb: 165 } };

/** The environment of a nested tap run: ours without tap's own variables. */
function nestedEnv(extra: Record<string, string>): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [key, value] of Object.entries(process.env)) if (!key.startsWith('TAP') && key !== 'NODE_OPTIONS') env[key] = value;
  return { ...env, ...extra };
}

/** Run the shipped-bundle tests on one release's own node build (one test file per release, so tap runs them side by side). */
export async function shippedBundleTestsOn(release: Release): Promise<void> {
  await whenAvailable(rootsMissing() ?? knotMissing() ?? bundleMissing(), `the shipped-bundle tests on ${RELEASE_NAMES[release]}'s node`, async () => {
    // Without redis-server the throttle file would skip inside (and fail "none skipped"): leave it out, loudly.
    const noRedis = redisMissing();
    if (noRedis) t.test(`THROTTLE STORE ON ${RELEASE_NAMES[release].toUpperCase()}'S NODE SKIPPED: ${noRedis}`, { skip: true }, async () => undefined);
    const files = noRedis ? SHIPPED_BUNDLE_TESTS : [...SHIPPED_BUNDLE_TESTS, THROTTLE_TEST];
    t.test(`${RELEASE_NAMES[release]}'s own node runs the shipped-bundle tests`, { timeout: 280_000 }, async (t) => {
      const node = distroNode(release);
      const version = (await run(node, ['-p', 'process.version + " c-ares " + process.versions.ares + " libuv " + process.versions.uv'], { env: nestedEnv({}) })).stdout.trim();
      t.comment(`${release}: node ${version}`);
      const env = nestedEnv({ FCRDNS_TEST_NODE: node, FCRDNS_RSS_BUDGET_MB: String(BUILDS[release].budgetMb) });
      const result = await run(join(checkout, 'node_modules', '.bin', 'tap'), ['--reporter=tap', '--jobs=1', '--timeout=250', ...files], { cwd: checkout, env, timeout: 270_000, maxBuffer: 1 << 26 }).then(
        (r) => ({ code: 0, out: r.stdout + r.stderr }),
        (error: { code?: number; stdout?: string; stderr?: string }) => ({ code: error.code ?? 1, out: `${error.stdout ?? ''}${error.stderr ?? ''}` }),
      );
      const summary = /# \{ total: (\d+), pass: (\d+)(?:, fail: (\d+))?(?:, skip: (\d+))?/.exec(result.out);
      const failures = result.out.split('\n').filter((line) => /^\s*not ok /.test(line)).slice(0, 20);
      t.ok(summary && Number(summary[1]) > 0, `the tests ran on node ${version}`);
      t.same(failures, [], `no failure on ${release}'s node`);
      t.equal(Number(summary?.[4] ?? 0), 0, 'none skipped');
      t.equal(result.code, 0, 'tap exit status');
      if (result.code !== 0) t.comment(result.out.slice(-4000));
      const rss = /peak RSS ([\d.]+) MB/.exec(result.out)?.[1];
      if (rss) t.comment(`${release}: hostile-zone peak RSS ${rss} MB (budget ${BUILDS[release].budgetMb} MB)`);
    });
  });
}
