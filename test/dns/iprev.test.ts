import t from 'tap';
import ipaddr from 'ipaddr.js';
import { directLookups, keepPtrRecords } from '../../src/dns/resolver.js';
import { parseClientIp, reverseName } from '../../src/util/ip.js';
import { hostnameProblem, knownIprev, lookupIprev } from '../../src/dns/iprev.js';
import { LIMITS } from '../../src/config/limits.js';
import { zoneResolver, type ZoneTable } from '../helpers/zone-resolver.js';

async function check(ipText: string, table: ZoneTable, maxPtrNames = 10) {
  const resolver = zoneResolver(table);
  const ip = parseClientIp(ipText)!;
  const result = await lookupIprev(ip, directLookups(resolver, 1000), maxPtrNames);
  return { result, queries: resolver.queries };
}

const V4_ARPA = '5.113.0.203.in-addr.arpa';

t.test('reverse names', async (t) => {
  t.equal(reverseName(parseClientIp('203.0.113.5')!), V4_ARPA);
  t.equal(reverseName(parseClientIp('::ffff:203.0.113.5')!), V4_ARPA, 'IPv4-mapped is IPv4');
  t.equal(
    reverseName(parseClientIp('2001:db8::25')!),
    '5.2.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.ip6.arpa',
  );
});

t.test('only ::ffff:0:0/96 is taken for an IPv4 client, as ipaddr.js classifies it', async (t) => {
  for (const [text, family, canonical] of [
    ['::ffff:192.0.2.1', 4, '192.0.2.1'],
    ['::FFFF:c000:201', 4, '192.0.2.1'],
    ['0:0:0:0:0:ffff:cb00:7105', 4, '203.0.113.5'],
    ['::ffff:0:192.0.2.1', 6, '::ffff:0:c000:201'],
    // The deprecated IPv4-compatible form, which glibc's inet_ntop (and so Postfix) prints for
    // ::/96: an IPv6 client, although ipaddr.js alone would read it as IPv4-mapped.
    ['::192.0.2.1', 6, '::c000:201'],
    ['::198.51.100.1', 6, '::c633:6401'],
    ['0:0:0:0:0:0:203.0.113.5', 6, '::cb00:7105'],
    ['::ffff:198.51.100.1', 4, '198.51.100.1'],
    ['64:ff9b::192.0.2.1', 6, '64:ff9b::c000:201'],
    ['1::ffff:192.0.2.1', 6, '1::ffff:c000:201'],
    ['::fffe:192.0.2.1', 6, '::fffe:c000:201'],
  ] as const) {
    const ip = parseClientIp(text);
    t.match(ip, { family, text: canonical }, text);
  }
});

t.test('an IPv6-shaped address is taken exactly when ipaddr.js holds it valid (one parse, no isValid)', async (t) => {
  const texts = [
    '2001:db8::25', '::', '::1', '1::', '2001:DB8:0:0:0:0:0:1', '1:2:3:4:5:6:7:8', '::ffff:192.0.2.1',
    ':::', '1::2::3', '1:2:3:4:5:6:7:8:9', '12345::1', 'g::1', '2001:db8::25:', ':2001:db8::25',
    '1:2:3:4:5:6:7::8', '::ffff:192.0.2.256', '::ffff:192.0.2', '1.2.3.4::', '::1.2.3.04', ':', '::.',
  ];
  for (const text of texts) {
    const expected = ipaddr.IPv6.isValid(text) && /^[0-9a-fA-F:.]+$/.test(text);
    t.equal(parseClientIp(text) !== undefined, expected, text);
  }
});

t.test('pass: the PTR name resolves back to the client', async (t) => {
  const { result, queries } = await check('203.0.113.5', { ptr: { [V4_ARPA]: ['mail.example.com'] }, a: { 'mail.example.com': ['203.0.113.5'] } });
  t.equal(result.result, 'pass');
  t.same(result.confirmedNames, ['mail.example.com']);
  t.same(queries, [`PTR ${V4_ARPA}`, 'A mail.example.com'], 'A only for an IPv4 client');
});

t.test('IPv6 pass asks AAAA only, and compares canonical addresses', async (t) => {
  const arpa = reverseName(parseClientIp('2001:db8::25')!);
  const { result, queries } = await check('2001:DB8:0:0::25', { ptr: { [arpa]: ['mx6.example.com.'] }, aaaa: { 'mx6.example.com': ['2001:db8:0:0:0:0:0:25'] } });
  t.equal(result.result, 'pass');
  t.same(queries, [`PTR ${arpa}`, 'AAAA mx6.example.com']);
});

t.test('no_ptr: NXDOMAIN, no data, or only invalid names', async (t) => {
  t.equal((await check('203.0.113.5', {})).result.result, 'no_ptr');
  const nodata = await check('203.0.113.5', { a: { [V4_ARPA]: ['192.0.2.1'] } });
  t.equal(nodata.result.result, 'no_ptr');
  t.equal(nodata.result.ptr.code, 'ENODATA');
  const invalid = await check('203.0.113.5', { ptr: { [V4_ARPA]: ['203.0.113.5', 'bad_label-.example', '-x.example.com', '1.2.3'] } });
  t.equal(invalid.result.result, 'no_ptr');
  t.equal(invalid.result.ptr.ignored.length, 4);
  t.same(invalid.queries, [`PTR ${V4_ARPA}`], 'no forward lookups for names that are not names');
});

t.test('no_forward and mismatch', async (t) => {
  const noForward = await check('203.0.113.5', { ptr: { [V4_ARPA]: ['host.example.com'] }, aaaa: { 'host.example.com': ['2001:db8::5'] } });
  t.equal(noForward.result.result, 'no_forward', 'only an AAAA for an IPv4 client is not a forward record');
  const missing = await check('203.0.113.5', { ptr: { [V4_ARPA]: ['host.example.com'] } });
  t.equal(missing.result.result, 'no_forward');
  const mismatch = await check('203.0.113.5', { ptr: { [V4_ARPA]: ['host.example.com'] }, a: { 'host.example.com': ['203.0.113.6', '198.51.100.1'] } });
  t.equal(mismatch.result.result, 'mismatch');
  t.same(mismatch.result.forward[0]?.addresses, ['203.0.113.6', '198.51.100.1']);
});

t.test('several PTR names: one good one passes, even when another fails temporarily', async (t) => {
  const { result } = await check('203.0.113.5', {
    ptr: { [V4_ARPA]: ['stale.example.net', 'broken.example.org', 'mail.example.com'] },
    a: { 'stale.example.net': ['192.0.2.99'], 'broken.example.org': { error: 'ESERVFAIL' }, 'mail.example.com': ['203.0.113.5'] },
  });
  t.equal(result.result, 'pass');
  t.same(result.confirmedNames, ['mail.example.com']);
});

t.test('temperror: PTR stage and forward stage', async (t) => {
  for (const code of ['ESERVFAIL', 'EREFUSED', 'ETIMEOUT', 'ECONNREFUSED', 'EBADRESP', 'ESOMETHINGNEW']) {
    const { result } = await check('203.0.113.5', { ptr: { [V4_ARPA]: { error: code } } });
    t.equal(result.result, 'temperror', code);
    t.equal(result.temperrorStage, 'ptr');
    t.equal(result.ptr.code, code);
  }
  const forward = await check('203.0.113.5', {
    ptr: { [V4_ARPA]: ['a.example.com', 'b.example.com'] },
    a: { 'a.example.com': ['192.0.2.1'], 'b.example.com': { error: 'ETIMEOUT' } },
  });
  t.equal(forward.result.result, 'temperror', 'a temporary failure could have hidden a match');
  t.equal(forward.result.temperrorStage, 'forward');
});

t.test('names compare case-insensitively and duplicates are examined once', async (t) => {
  const { result, queries } = await check('203.0.113.5', {
    ptr: { [V4_ARPA]: ['MAIL.Example.COM.', 'mail.example.com'] },
    a: { 'mail.example.com': ['203.0.113.5'] },
  });
  t.equal(result.result, 'pass');
  t.same(result.ptr.names, ['mail.example.com']);
  t.equal(queries.length, 2);
});

t.test('max_ptr_names bounds the forward queries', async (t) => {
  const names = Array.from({ length: 30 }, (_, i) => `h${i}.example.com`);
  const { result, queries } = await check('203.0.113.5', { ptr: { [V4_ARPA]: names }, a: { 'h29.example.com': ['203.0.113.5'] } }, 10);
  t.equal(result.result, 'no_forward', 'the one good name is past the limit');
  t.equal(queries.length, 11);
  t.equal(result.ptr.ignored.length, LIMITS.maxIgnoredExamples, 'a few examples kept');
  t.same(result.ptr.ignoredCounts, { 'over max_ptr_names': 20 }, 'and every one counted');
});

t.test('an IPv4-compatible client is looked up in ip6.arpa', async (t) => {
  t.equal(
    reverseName(parseClientIp('::198.51.100.1')!),
    '1.0.4.6.3.3.6.c.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.ip6.arpa',
  );
});

t.test('a hostile PTR answer is kept bounded whatever its size', async (t) => {
  const long = (i: number) => `${'x'.repeat(60)}.${'y'.repeat(60)}.${'z'.repeat(60)}.${String(i).padStart(50, 'n')}.hostile.example`;
  const records = [
    ...Array.from({ length: 300 }, (_, i) => long(i)),
    ...Array.from({ length: 3000 }, () => long(1).toUpperCase()),
    ...Array.from({ length: 500 }, (_, i) => `bad name ${i} ${'\u0000'.repeat(400)}`),
    '192.0.2.1',
  ];
  const kept = keepPtrRecords(records);
  if (kept.kind !== 'answer') throw new Error('not an answer');
  t.equal(kept.records.length, LIMITS.maxPtrNamesCeiling + LIMITS.maxIgnoredExamples, 'ceiling names + a few examples');
  t.ok(kept.records.every((record) => record.length <= LIMITS.maxLogFieldChars), 'every kept record cut to 256 characters');
  t.equal(kept.omitted, records.length - kept.records.length);
  t.same(kept.dropped, { 'over max_ptr_names': 250, duplicate: 2996, 'invalid hostname': 500, 'numeric name': 1 });
  const ip = parseClientIp('192.0.2.1')!;
  const result = knownIprev(ip, { ptr: () => kept, addresses: () => ({ kind: 'not_found', code: 'ENOTFOUND' }) }, 10);
  t.equal(result?.result, 'no_forward');
  t.equal(result?.ptr.names.length, 10);
  t.equal(result?.ptr.ignored.length, LIMITS.maxIgnoredExamples);
  const counts = result?.ptr.ignoredCounts ?? {};
  t.equal(Object.values(counts).reduce((sum, count) => sum + (count ?? 0), 0), records.length - 10, 'every record is accounted for');
  t.ok(JSON.stringify(kept).length < 16_000, `kept answer serialises to ${JSON.stringify(kept).length} characters`);
});

t.test('hostname validity follows Postfix valid_hostname', async (t) => {
  t.equal(hostnameProblem('mail.example.com'), undefined);
  t.equal(hostnameProblem('mail_1.example.com'), undefined, 'underscores accepted');
  t.equal(hostnameProblem('localhost'), undefined, 'localhost is not special');
  t.equal(hostnameProblem('1.2.3.4'), 'numeric name');
  t.equal(hostnameProblem('2001:db8::1'), 'numeric name');
  t.equal(hostnameProblem('123'), 'numeric name');
  t.equal(hostnameProblem('-a.example.com'), 'invalid hostname');
  t.equal(hostnameProblem('a-.example.com'), 'invalid hostname');
  t.equal(hostnameProblem('a..example.com'), 'invalid hostname');
  t.equal(hostnameProblem('a b.example.com'), 'invalid hostname');
  t.equal(hostnameProblem(`${'a'.repeat(64)}.example.com`), 'invalid hostname');
  t.equal(hostnameProblem(`${'a.'.repeat(127)}com`), 'invalid hostname');
  t.equal(hostnameProblem('caf\u00e9.example'), 'invalid hostname');
});
