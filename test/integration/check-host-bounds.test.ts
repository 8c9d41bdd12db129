/**
 * `check HOST` on a name with 1,024 addresses, each with 50 PTR names (a hostile or merely huge
 * round-robin name): at most LIMITS.maxCheckHostAddresses addresses are checked, the rest are
 * counted in text and JSON, and the queries and the output stay bounded. Against Knot on loopback.
 */
import { execFile } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { LIMITS } from '../../src/config/limits.js';
import { checkedCounts } from '../../src/cli/diagnose.js';
import { BUNDLE, bundleMissing } from '../helpers/bundle.js';
import { knotMissing, startKnot, type ZoneSpec } from '../helpers/knot.js';

const ADDRESSES = 1024;
const PTR_NAMES = 50;

t.test('the addresses checked: half for each family, what one does not use going to the other', async (t) => {
  t.same(checkedCounts(1024, 0), { a: 8, aaaa: 0 });
  t.same(checkedCounts(1024, 1024), { a: 4, aaaa: 4 });
  t.same(checkedCounts(1024, 2), { a: 6, aaaa: 2 });
  t.same(checkedCounts(1, 100), { a: 1, aaaa: 7 });
  t.same(checkedCounts(2, 1), { a: 2, aaaa: 1 });
});

/** 198.18.0.0/22 (RFC 2544 benchmarking space): 1,024 A records for one name, 50 PTR names for each address. */
function zones(): Record<string, ZoneSpec> {
  const host = ['ns A 127.0.0.1'];
  const reverse: Record<string, string[]> = {};
  for (let n = 0; n < ADDRESSES; n++) {
    const [third, fourth] = [n >> 8, n & 255];
    host.push(`big A 198.18.${third}.${fourth}`);
    const zone = `${third}.18.198.in-addr.arpa`;
    reverse[zone] ??= [];
    for (let j = 0; j < PTR_NAMES; j++) reverse[zone]!.push(`${fourth} PTR n${j}.a${n}.big.example.com.`);
  }
  return { 'example.com': host, ...reverse };
}

const missing = knotMissing() ?? bundleMissing();
if (missing) {
  if (process.env.CI) t.fail(`check HOST bound tests cannot run: ${missing}`);
  else t.test(`CHECK HOST BOUND TESTS SKIPPED: ${missing}`, { skip: true }, async () => undefined);
} else {
  const knot = await startKnot(zones());
  t.teardown(() => knot.stop());
  const dir = mkdtempSync(join(tmpdir(), 'fcrdns-check-bound-'));
  const config = join(dir, 'fcrdns-policyd.conf');
  // max_ptr_names at its ceiling: every address costs a PTR query and fifty forward queries.
  writeFileSync(config, `dns_servers = 127.0.0.1:${knot.port}\ndns_timeout = 2s\ndns_tries = 2\nmax_ptr_names = ${PTR_NAMES}\n`);
  const check = (args: string[]) =>
    new Promise<{ code: number; stdout: string }>((resolve) => {
      execFile(process.execPath, [BUNDLE, 'check', ...args, '--config', config], { timeout: 50_000, maxBuffer: 1 << 26 }, (error, stdout) =>
        resolve({ code: error ? Number(error.code) : 0, stdout }),
      );
    });
  const total = (counts: Record<string, number>) => Object.values(counts).reduce((sum, count) => sum + count, 0);

  t.test('a name with 1,024 addresses of 50 PTR names each: bounded queries, bounded output, the rest counted', async (t) => {
    const before = total(await knot.queryCounts());
    const json = await check(['big.example.com', '--json']);
    const queries = total(await knot.queryCounts()) - before;
    const report = JSON.parse(json.stdout) as {
      targets: Array<{ host: { a: { addresses: string[]; omitted?: number } }; addresses: Array<{ ip: string }>; addresses_omitted?: number }>;
    };
    const target = report.targets[0]!;
    t.equal(target.addresses.length, LIMITS.maxCheckHostAddresses, 'eight addresses checked');
    t.equal(target.host.a.addresses.length, LIMITS.maxCheckHostAddresses, 'and listed');
    t.equal(target.host.a.omitted, ADDRESSES - LIMITS.maxCheckHostAddresses, 'the others counted in host.a.omitted');
    t.equal(target.addresses_omitted, ADDRESSES - LIMITS.maxCheckHostAddresses, 'and in addresses_omitted');
    // The host's A and AAAA, then per address one PTR and at most max_ptr_names forward lookups,
    // each tried at most dns_tries times (a burst of 400 UDP queries may lose some) and once more
    // over TCP when truncated: nowhere near the 52,000 queries of every address.
    const bound = 2 + LIMITS.maxCheckHostAddresses * (1 + PTR_NAMES);
    t.comment(`queries: ${queries} (${bound} without retries); JSON ${json.stdout.length.toLocaleString('en-US')} characters`);
    t.ok(queries <= 2 * bound + 16, `${queries} queries, at most dns_tries × ${bound} and TCP retries`);
    t.ok(json.stdout.length < 400_000, 'JSON output bounded');

    const text = await check(['big.example.com']);
    const lines = text.stdout.split('\n').length;
    t.comment(`text: ${lines} lines`);
    t.match(text.stdout, /big\.example\.com\.  A     … and 1,016 more, not checked/);
    t.match(text.stdout, /checked 8 of 1,024 addresses \(at most 8 of a host\)/);
    t.ok(lines < 1_000, `${lines} lines of text, not 77,000`);
  });
}
