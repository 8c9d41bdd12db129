/** The bundle's one-shot commands: check, config, --version, --help, and their exit codes. */
import { execFile } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { BUNDLE, BUNDLE_NODE, bundleMissing } from '../helpers/bundle.js';
import { knotMissing, startKnot } from '../helpers/knot.js';
import { ZONES } from '../helpers/zones.js';

function runBundle(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(BUNDLE_NODE, [BUNDLE, ...args], { timeout: 20_000 }, (error, stdout, stderr) => {
      const code = error ? (typeof error.code === 'number' ? error.code : -1) : 0;
      resolve({ code, stdout, stderr });
    });
  });
}

function configFile(text: string): string {
  const path = join(mkdtempSync(join(tmpdir(), 'fcrdns-cli-')), 'fcrdns-policyd.conf');
  writeFileSync(path, text);
  return path;
}

const missing = bundleMissing();
if (missing) {
  if (process.env.CI) t.fail(missing);
  else t.test(`CLI TESTS SKIPPED: ${missing}`, { skip: true }, async () => undefined);
} else {
  await t.test('--version, --help and usage errors', async (t) => {
    const version = await runBundle(['--version']);
    t.equal(version.code, 0);
    t.match(version.stdout, /^fcrdns-policyd \d+\.\d+\.\d+\n$/);
    const help = await runBundle(['--help']);
    t.equal(help.code, 0);
    t.match(help.stdout, /check IP/);
    t.equal((await runBundle(['--bogus'])).code, 64);
    t.equal((await runBundle(['frobnicate'])).code, 64);
    t.equal((await runBundle(['check'])).code, 64);
    const badIp = await runBundle(['check', 'not a host!']);
    t.equal(badIp.code, 64);
    t.match(badIp.stderr, /not an IP address or host name/);
    t.equal((await runBundle(['config', '--json'])).code, 64);
  });

  await t.test('config prints every effective setting, or file:line errors', async (t) => {
    const good = await runBundle(['config', '--config', configFile('mode = strict\n# comment\ncheck = reverse\n')]);
    t.equal(good.code, 0);
    t.match(good.stdout, /^listen = 127\.0\.0\.1:10040\n/);
    t.match(good.stdout, /\nmode = strict\n/);
    t.match(good.stdout, /\nno_ptr_action = reject\n/);
    t.match(good.stdout, /\nmismatch_action = dunno\n/);
    t.equal(good.stdout.trim().split('\n').length, 39, 'one line per key');
    const path = configFile('mode = strict\nmsimatch_action = reject\ndns_timeout = soon\n');
    const bad = await runBundle(['config', '--config', path]);
    t.equal(bad.code, 78);
    t.match(bad.stderr, `${path}:2: msimatch_action: unknown key (did you mean mismatch_action?)`);
    t.match(bad.stderr, `${path}:3: dns_timeout: invalid value "soon"`);
    const absent = await runBundle(['config', '--config', '/nonexistent/fcrdns.conf']);
    t.equal(absent.code, 78);
    t.match(absent.stderr, /\/nonexistent\/fcrdns\.conf: cannot read: ENOENT/);
  });

  const knotProblem = knotMissing();
  if (knotProblem) {
    if (process.env.CI) t.fail(knotProblem);
    else t.test(`CHECK COMMAND TESTS SKIPPED: ${knotProblem}`, { skip: true }, async () => undefined);
  } else {
    const knot = await startKnot(ZONES);
    t.teardown(() => knot.stop());
    const config = configFile(`dns_servers = 127.0.0.1:${knot.port}\ndns_timeout = 1s\ndns_tries = 1\nmode = strict\n`);

    await t.test('check: pass explains the lookups, exit 0', async (t) => {
      const result = await runBundle(['check', '192.0.2.10', '--config', config]);
      t.equal(result.code, 0);
      t.match(result.stdout, /✓ PTR +10\.2\.0\.192\.in-addr\.arpa\. +PTR +mail\.example\.com\.\n/);
      t.match(result.stdout, /✓ A +mail\.example\.com\. +A +192\.0\.2\.10 +<- matches/);
      t.match(result.stdout, /result: pass; action: dunno -> action=DUNNO/);
      t.match(result.stdout, /Nothing to fix/);
      t.notMatch(result.stdout, /\x1b\[/, 'no colour when not on a terminal');
    });

    await t.test('check: no PTR says who must fix it, exit 1', async (t) => {
      const result = await runBundle(['check', '192.0.2.11', '--config', config]);
      t.equal(result.code, 1);
      t.match(result.stdout, /✗ PTR +11\.2\.0\.192\.in-addr\.arpa\. +no PTR record \(ENOTFOUND\)/);
      t.match(result.stdout, /result: no_ptr; action: reject -> action=550 5\.7\.25 cannot find your hostname, \[192\.0\.2\.11\]/);
      t.match(result.stdout, /hosting provider or ISP, not your domain's DNS host/);
      t.match(result.stdout, /Status: permanent failure \(exit 1\)/);
    });

    await t.test('check: mismatch, --json, --helo', async (t) => {
      const result = await runBundle(['check', '192.0.2.13', '--config', config, '--json', '--helo', 'Mail.Example.com']);
      t.equal(result.code, 1);
      const json = JSON.parse(result.stdout) as {
        status: string;
        findings: Array<{ code: string; message: string }>;
        targets: Array<{ addresses: unknown[]; findings: Array<{ code: string; message: string }> }>;
      };
      t.equal(json.status, 'permanent');
      t.match(json.targets[0]?.addresses[0], {
        ip: '192.0.2.13',
        reverse_name: '13.2.0.192.in-addr.arpa',
        result: 'mismatch',
        ptr: { outcome: 'answer', names: ['mismatch.example.com'] },
        forward: [{ name: 'mismatch.example.com', addresses: ['192.0.2.99'], matched: false }],
        action: 'reject',
        reply: '550 5.7.25 cannot find your hostname, [192.0.2.13]',
      });
      t.same(json.targets[0]?.findings.map((finding) => finding.code), ['mismatch']);
      t.same(json.findings.map((finding) => finding.code), ['mismatch', 'helo_mismatch']);
      t.match(json.targets[0]?.findings[0]?.message, /192\.0\.2\.99/);
    });

    await t.test('check: temporary failure exits 2', async (t) => {
      const result = await runBundle(['check', '198.51.100.1', '--config', config]);
      t.equal(result.code, 2);
      t.match(result.stdout, /result: temperror \(ptr lookup\); action: defer -> action=450 4\.7\.25/);
      t.match(result.stdout, /Status: temporary failure only \(exit 2\)/);
    });

    await t.test('check: IPv6 and a client the daemon would skip', async (t) => {
      const v6 = await runBundle(['check', '2001:db8::25', '--config', config]);
      t.equal(v6.code, 0);
      t.match(v6.stdout, /✓ AAAA +mx6\.example\.com\. +AAAA +2001:db8::25 +<- matches/);
      const skipped = await runBundle(['check', '192.0.2.10', '--config', configFile(`dns_servers = 127.0.0.1:${knot.port}\nskip_networks = 192.0.2.0/24\n`)]);
      t.match(skipped.stdout, /this daemon skips the client: skip_network/);
    });
  }
}
