/**
 * The README's quick start, verbatim: `npm start` on this checkout with built-in defaults, then
 * the README's `printf … | nc` line, whose answer must be the one the README shows. It runs in a
 * private network namespace (unshare -n, loopback only) so the daemon's system-resolver lookup
 * cannot leave the machine: the resolver is unreachable there, which soft mode defers exactly
 * as it defers a missing PTR.
 */
import { execFileSync, spawn } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import t from 'tap';
import { hasCommand } from '../helpers/requirements.js';

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const readme = readFileSync(join(root, 'README.md'), 'utf8');

t.test('README opens with the two quick-start commands', async (t) => {
  t.match(readme, /```sh\nnpm ci && npm start\n```/);
  t.match(readme, /```sh\nnpm ci && npm test\n```/);
  t.ok(readme.indexOf('npm ci && npm start') < readme.indexOf('## Wiring'), 'quick start comes first');
});

// The README's two ways to send the first request: the program's own client, and bash alone.
const oneLiner = /^node dist\/fcrdns-policyd\.js query client_address=.*$/m.exec(readme)?.[0];
const answer = /^action=.*$/m.exec(readme.slice(readme.indexOf(oneLiner ?? '\u0000')))?.[0];
const bashLiner = /^bash -c 'exec 3<>\/dev\/tcp\/127\.0\.0\.1\/10040; .*'$/m.exec(readme)?.[0];
const missing = ['unshare', 'nsenter', 'ip', 'bash'].filter((name) => !hasCommand(name));
const privileged = missing.length === 0 && (() => {
  try {
    execFileSync('unshare', ['-n', 'true'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
})();

if (!oneLiner || !answer || !bashLiner) {
  t.fail('README must show a `node dist/fcrdns-policyd.js query client_address=…` line followed by its action= answer, and a bash /dev/tcp line');
} else if (missing.length > 0 || !privileged || existsSync('/etc/fcrdns-policyd/fcrdns-policyd.conf')) {
  const why =
    missing.length > 0
      ? `missing tools: ${missing.join(', ')}`
      : !privileged
        ? 'cannot create a network namespace (unshare -n needs root)'
        : '/etc/fcrdns-policyd/fcrdns-policyd.conf exists, so npm start would not run on built-in defaults';
  if (process.env.CI) t.fail(`quick start test cannot run: ${why}`);
  else t.test(`QUICK START TEST SKIPPED: ${why}`, { skip: true }, async () => undefined);
} else {
  t.test('npm start answers the README example on 127.0.0.1:10040', async (t) => {
    const daemon = spawn('unshare', ['-n', '--', 'sh', '-c', 'ip link set lo up && exec npm start --silent'], {
      cwd: root,
      stdio: ['ignore', 'pipe', 'pipe'],
      // Its own process group, so the teardown stops npm and the daemon under it together.
      detached: true,
    });
    t.teardown(() => {
      try {
        process.kill(-(daemon.pid ?? 0), 'SIGTERM');
      } catch {
        // already gone
      }
    });
    let output = '';
    const started = await new Promise<boolean>((resolve) => {
      const timer = setTimeout(() => resolve(false), 60_000);
      daemon.stdout.on('data', (chunk: Buffer) => {
        output += chunk.toString();
        if (output.includes('"msg":"started"')) {
          clearTimeout(timer);
          resolve(true);
        }
      });
      daemon.once('exit', () => resolve(false));
    });
    t.ok(started, 'npm start logs "started"');
    t.match(output, /"listen":"127\.0\.0\.1:10040"/);
    t.match(output, /"source":"\(built-in defaults\)"/);
    // The daemon is the child of unshare's sh (exec'd by npm); enter its network namespace.
    const inNamespace = (line: string) =>
      execFileSync('nsenter', ['-t', String(daemon.pid), '-n', '--', 'sh', '-c', line], { cwd: root, encoding: 'utf8', timeout: 30_000 });
    t.equal(inNamespace(oneLiner), `${answer}\n`, 'query prints the answer shown in the README');
    t.equal(inNamespace(bashLiner), `${answer}\n`, 'and so does the bash /dev/tcp line');
  });
}
