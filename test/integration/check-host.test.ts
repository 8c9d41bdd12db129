/**
 * `fcrdns-policyd check HOST`: every A and AAAA address of a sending host checked against a
 * real DNS server (Knot), with findings in the order an operator should act, exit status and
 * the JSON schema.
 */
import { execFile } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { BUNDLE, bundleMissing } from '../helpers/bundle.js';
import { knotMissing, startKnot } from '../helpers/knot.js';
import { ZONES } from '../helpers/zones.js';

interface Report {
  schema: number;
  status: string;
  findings: Array<{ code: string; severity: string; address?: string; message: string; fix: string }>;
  targets: Array<{
    target: string;
    kind: string;
    host?: { name: string; a: { addresses: string[] }; aaaa: { addresses: string[]; outcome: string } };
    addresses: Array<{ ip: string; source: string; result: string; action: string; confirmed_names: string[] }>;
    findings: Array<{ code: string; severity: string; address?: string; message: string; fix: string }>;
  }>;
}

const missing = knotMissing() ?? bundleMissing();
if (missing) {
  if (process.env.CI) t.fail(`check HOST tests cannot run: ${missing}`);
  else t.test(`CHECK HOST TESTS SKIPPED: ${missing}`, { skip: true }, async () => undefined);
} else {
  const knot = await startKnot(ZONES);
  t.teardown(() => knot.stop());
  const dir = mkdtempSync(join(tmpdir(), 'fcrdns-check-'));
  const config = join(dir, 'fcrdns-policyd.conf');
  writeFileSync(config, `dns_servers = 127.0.0.1:${knot.port}\ndns_timeout = 1s\ndns_tries = 1\nmode = strict\n`);

  const check = (args: string[]) =>
    new Promise<{ code: number; stdout: string }>((resolve) => {
      execFile(process.execPath, [BUNDLE, 'check', ...args, '--config', config], { timeout: 20_000 }, (error, stdout) =>
        resolve({ code: error ? Number(error.code) : 0, stdout }),
      );
    });
  const json = async (args: string[]) => {
    const result = await check([...args, '--json']);
    return { code: result.code, report: JSON.parse(result.stdout) as Report };
  };

  t.test('both families pass', async (t) => {
    const { code, report } = await json(['both.example.com']);
    t.equal(code, 0);
    t.equal(report.schema, 1);
    t.equal(report.status, 'pass');
    const target = report.targets[0]!;
    t.equal(target.kind, 'host');
    t.same(target.host?.a.addresses, ['192.0.2.40']);
    t.same(target.host?.aaaa.addresses, ['2001:db8::40']);
    t.same(target.addresses.map((address) => [address.ip, address.source, address.result]), [
      ['192.0.2.40', 'A', 'pass'],
      ['2001:db8::40', 'AAAA', 'pass'],
    ]);
    t.same(target.findings, []);
    const text = await check(['both.example.com']);
    t.match(text.stdout, /both\.example\.com\.  A     192\.0\.2\.40\n/);
    t.match(text.stdout, /✓ AAAA  both\.example\.com\.  AAAA  2001:db8::40  <- matches/);
    t.match(text.stdout, /Nothing to fix/);
  });

  t.test('IPv4 passes, IPv6 has no PTR', async (t) => {
    const { code, report } = await json(['v6noptr.example.com']);
    t.equal(code, 1);
    const findings = report.targets[0]!.findings;
    t.equal(findings.length, 1);
    t.match(findings[0], { code: 'ipv6_no_ptr', severity: 'permanent', address: '2001:db8::41' });
    t.match(findings[0]?.message, /while IPv4 is fine/);
    t.match(findings[0]?.fix, /hosting provider or ISP, not your domain's DNS host/);
    t.match(findings[0]?.fix, /PTR record to v6noptr\.example\.com/);
  });

  t.test("PTR at the provider's default name, without forward match", async (t) => {
    const { code, report } = await json(['provider.example.com']);
    t.equal(code, 1);
    t.match(report.targets[0]!.addresses[0], { ip: '192.0.2.42', result: 'no_forward', action: 'reject' });
    t.match(report.targets[0]!.findings, [{ code: 'provider_default_name', address: '192.0.2.42' }]);
    t.match(report.targets[0]!.findings[0]?.message, /192-0-2-42\.static\.isp\.example\.net/);
    t.match(report.targets[0]!.findings[0]?.fix, /set its PTR record to provider\.example\.com/);
  });

  t.test('two A records, one fails', async (t) => {
    const { code, report } = await json(['twoa.example.com']);
    t.equal(code, 1);
    t.same(report.targets[0]!.addresses.map((address) => [address.ip, address.result]), [
      ['192.0.2.10', 'pass'],
      ['192.0.2.11', 'no_ptr'],
    ]);
    t.same(report.targets[0]!.findings.map((finding) => [finding.code, finding.address]), [['no_ptr', '192.0.2.11']]);
  });

  t.test('a forward-confirmed but generic-looking name is a warning', async (t) => {
    const { code, report } = await json(['dynhost.example.com']);
    t.equal(code, 0, 'FCrDNS passes');
    t.match(report.findings, [{ code: 'generic_name', severity: 'warning', address: '192.0.2.43' }]);
    t.match(report.findings[0]?.message, /192-0-2-43\.dyn\.example\.com looks like a dynamic or pool address/);
  });

  t.test('a CNAME to the host is followed', async (t) => {
    const { code, report } = await json(['alias.example.com']);
    t.equal(code, 0);
    t.same(report.targets[0]!.addresses.map((address) => address.ip), ['192.0.2.40', '2001:db8::40']);
    t.same(report.targets[0]!.addresses[0]?.confirmed_names, ['both.example.com']);
  });

  t.test('an unknown host (NXDOMAIN)', async (t) => {
    const { code, report } = await json(['nohost.example.com']);
    t.equal(code, 1);
    t.same(report.targets[0]!.addresses, []);
    t.match(report.targets[0]!.findings, [{ code: 'unknown_host', severity: 'permanent' }]);
    const text = await check(['nohost.example.com']);
    t.match(text.stdout, /1\. ✗ nohost\.example\.com has no A or AAAA record/);
  });

  t.test('HELO name that is not a confirmed PTR name', async (t) => {
    const { code, report } = await json(['both.example.com', '--helo', 'wrong.example.com']);
    t.equal(code, 0, 'a HELO mismatch is advice, not an FCrDNS failure');
    t.same(report.targets[0]!.findings, [], 'the host itself is fine');
    t.match(report.findings, [{ code: 'helo_mismatch', severity: 'warning' }]);
    t.equal(report.findings.length, 1);
    t.match(report.findings[0]?.fix, /myhostname = both\.example\.com/);
    const good = await json(['both.example.com', '--helo', 'Both.Example.COM']);
    t.same(good.report.findings, [], 'a matching HELO (any case) is fine');
  });

  t.test('several targets: the worst status wins; findings come in the order to act', async (t) => {
    const { code, report } = await json(['both.example.com', '198.51.100.1']);
    t.equal(code, 2, 'only a temporary failure');
    const mixed = await json(['198.51.100.1', 'twoa.example.com', '192.0.2.13']);
    t.equal(mixed.code, 1);
    t.equal(report.targets.length, 2);
    t.same(mixed.report.findings.map((finding) => finding.code), ['no_ptr', 'mismatch', 'temperror'], 'sorted across targets');
    const text = await check(['v6noptr.example.com', '192.0.2.13', '--helo', 'x.example.com']);
    t.equal(text.stdout.split('HELO name').length - 1, 1, 'the HELO name is judged once, against all addresses');
    const order = ['IPv6 address', 'resolves elsewhere', 'HELO name'].map((needle) => text.stdout.indexOf(needle));
    t.ok(order.every((index) => index >= 0), 'all findings shown');
    t.same([...order].sort((a, b) => a - b), order, 'no PTR before a mismatch before the HELO advice');
  });
}
