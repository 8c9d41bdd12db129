/**
 * Beyond the built-ins, in the pure core: generic-looking PTR names (a table of real-world
 * shapes, both sides, with the false-positive rate), HELO assessment, the RFC 8601 header,
 * pass_names on label boundaries, and how these signals combine with the iprev decision.
 */
import t from 'tap';
import { authenticationResults, iprevResultWord } from '../../src/judge/authres.js';
import { directLookups } from '../../src/dns/resolver.js';
import { genericSignal, type GenericLevel } from '../../src/judge/generic.js';
import { assessHelo } from '../../src/judge/helo.js';
import { parseClientIp } from '../../src/util/ip.js';
import { decide, matchesPassNames } from '../../src/judge/policy.js';
import { zoneResolver } from '../helpers/zone-resolver.js';

/** [client IP, PTR name] shaped like real access-network names: generic at the conservative level. */
const GENERIC: Array<[string, string]> = [
  ['203.0.113.5', '203-0-113-5.dyn.example.net'],
  ['203.0.113.5', 'host-203-0-113-5.customer.example.net'],
  ['203.0.113.5', '5-113-0-203.pool.example.net'],
  ['203.0.113.5', '5.113.0.203.broadband.example.net'],
  ['203.0.113.5', 'cpe-203-0-113-5.cable.example.com'],
  ['203.0.113.5', 'c-203-0-113-5.hsd1.example.com'],
  ['203.0.113.5', 'ppp-203-0-113-5.example.net'],
  ['203.0.113.5', 'adsl-203-0-113-5.dsl.example.net'],
  ['203.0.113.5', 'dsl-203-000-113-005.example.net'],
  ['203.0.113.5', '203000113005.example.net'],
  ['203.0.113.5', 'cb007105.example.net'],
  ['203.0.113.5', 'ip203-0-113-5.example.net'],
  ['203.0.113.5', 'd203-0-113-5.example.org'],
  ['203.0.113.5', '203.0.113.5.example.org'],
  ['203.0.113.5', 'x5-113-0-203.res.example.org'],
  ['203.0.113.5', 'dhcp-5-113.example.edu'],
  ['203.0.113.5', 'dynamic-ip-5.example.net'],
  ['203.0.113.5', 'pool-5.nyc.example.net'],
  ['203.0.113.5', 'client-5.example.net'],
  ['203.0.113.5', 'customer5.example.net'],
  ['203.0.113.5', 'dialup-5.example.net'],
  ['203.0.113.5', 'cable-5-113.example.com'],
  ['198.51.100.42', '198-51-100-42.dynamic.example.com'],
  ['198.51.100.42', '42.100.51.198.dsl.example.com'],
  ['198.51.100.42', 'pppoe-198-51-100-42.example.com'],
  ['198.51.100.42', 'cust-198-51-100-42.example.com'],
  ['198.51.100.42', '198_51_100_42.example.com'],
  ['198.51.100.42', 'c633642a.example.com'],
  ['198.51.100.42', 'dyn-42-100.example.com'],
  ['198.51.100.42', 'modem-42.example.com'],
  ['192.0.2.77', '192-0-2-77.cpe.example.net'],
  ['192.0.2.77', 'vdsl-192-0-2-77.example.net'],
  ['2001:db8::25', '2001-db8--25.dyn.example.net'],
  ['2001:db8::25', '20010db8000000000000000000000025.pool.example.net'],
  ['2001:db8::25', 'dynamic-2001-db8.example.net'],
];

/** Server-shaped names that must not be called generic. */
const NOT_GENERIC: Array<[string, string]> = [
  ['203.0.113.5', 'mail.example.com'],
  ['203.0.113.5', 'mx1.example.com'],
  ['203.0.113.5', 'smtp.example.org'],
  ['203.0.113.5', 'mail-out-5.example.net'],
  ['203.0.113.5', 'mta5.example.net'],
  ['203.0.113.5', 'static-203-0-113-5.example.net'],
  ['203.0.113.5', 'mx-203-0-113-5.example.net'],
  ['203.0.113.5', 'relay.example.org'],
  ['203.0.113.5', 'outbound.example.com'],
  ['203.0.113.5', 'www.example.com'],
  ['203.0.113.5', 'server1.example.com'],
  ['203.0.113.5', 'vps123.hosting.example.net'],
  ['203.0.113.5', 'web01.example.org'],
  ['203.0.113.5', 'ns1.example.net'],
  ['203.0.113.5', 'gw.example.net'],
  ['203.0.113.5', 'lists.example.org'],
  ['203.0.113.5', 'example.com'],
  ['203.0.113.5', 'srv-a.example.com'],
  ['203.0.113.5', 'o1.email.example.com'],
  ['203.0.113.5', 'bounce.example.com'],
  ['198.51.100.42', 'mail42.example.com'],
  ['198.51.100.42', 'mx2.mail.example.com'],
  ['198.51.100.42', 'smtp-relay.example.com'],
  ['198.51.100.42', 'alpha.example.com'],
  ['198.51.100.42', 'newsletter.example.com'],
  ['198.51.100.42', 'exchange.corp.example.com'],
  ['198.51.100.42', 'zimbra.example.org'],
  ['198.51.100.42', 'post.example.net'],
  ['198.51.100.42', 'a.b.c.example.net'],
  ['192.0.2.77', 'mailgw.example.edu'],
  ['192.0.2.77', 'postfix.example.org'],
  ['192.0.2.77', 'mx.dsl-provider.example.net'],
  ['2001:db8::25', 'mx6.example.com'],
  ['2001:db8::25', 'mail.ipv6.example.com'],
  ['2001:db8::25', 'smtp6.example.org'],
];

function rate(level: GenericLevel, rows: Array<[string, string]>): { flagged: number; names: string[] } {
  const names = rows.filter(([ip, name]) => genericSignal(name, parseClientIp(ip)!, level) !== undefined).map(([, name]) => name);
  return { flagged: names.length, names };
}

t.test(`generic names: ${GENERIC.length} generic and ${NOT_GENERIC.length} server-shaped names`, async (t) => {
  t.ok(GENERIC.length + NOT_GENERIC.length >= 60);
  const conservativeHits = rate('conservative', GENERIC);
  const conservativeFalse = rate('conservative', NOT_GENERIC);
  const aggressiveHits = rate('aggressive', GENERIC);
  const aggressiveFalse = rate('aggressive', NOT_GENERIC);
  for (const [ip, name] of GENERIC) t.ok(genericSignal(name, parseClientIp(ip)!, 'conservative'), `generic: ${name}`);
  for (const [ip, name] of NOT_GENERIC) t.notOk(genericSignal(name, parseClientIp(ip)!, 'conservative'), `not generic: ${name}`);
  t.ok(aggressiveHits.flagged >= conservativeHits.flagged, 'aggressive finds at least what conservative finds');
  const pct = (n: number, of: number) => `${((100 * n) / of).toFixed(1)}%`;
  t.comment(
    `generic table: conservative detects ${conservativeHits.flagged}/${GENERIC.length}, false positives ${conservativeFalse.flagged}/${NOT_GENERIC.length} (${pct(conservativeFalse.flagged, NOT_GENERIC.length)}); ` +
      `aggressive detects ${aggressiveHits.flagged}/${GENERIC.length}, false positives ${aggressiveFalse.flagged}/${NOT_GENERIC.length} (${pct(aggressiveFalse.flagged, NOT_GENERIC.length)}: ${aggressiveFalse.names.join(', ')})`,
  );
  t.ok(aggressiveFalse.flagged <= NOT_GENERIC.length / 5, 'aggressive stays under 20% false positives on this table');
});

t.test('generic signal says why', async (t) => {
  t.match(genericSignal('203-0-113-5.dyn.example.net', parseClientIp('203.0.113.5')!, 'conservative'), { rule: 'address', reason: 'address in name', detail: '203-0-113-5' });
  t.match(genericSignal('pool-x.example.net', parseClientIp('203.0.113.5')!, 'conservative'), { rule: 'access-word', reason: 'access-network word', detail: 'pool' });
  t.notOk(genericSignal('203-0-113-5.example.net', parseClientIp('198.51.100.1')!, 'conservative'), "another address's digits are not evidence");
});

t.test('HELO assessment', async (t) => {
  const resolver = zoneResolver({ a: { 'other.example.com': ['203.0.113.5'], 'elsewhere.example.com': ['192.0.2.1'], 'broken.example.com': { error: 'ESERVFAIL' } } });
  const dns = directLookups(resolver, 1000);
  const ip = parseClientIp('203.0.113.5')!;
  const confirmed = ['mail.example.com'];
  t.equal(await assessHelo('Mail.Example.com', ip, confirmed, dns), 'confirmed');
  t.equal(await assessHelo('other.example.com', ip, confirmed, dns), 'resolves');
  t.equal(await assessHelo('elsewhere.example.com', ip, confirmed, dns), 'mismatch');
  t.equal(await assessHelo('nowhere.example.com', ip, confirmed, dns), 'mismatch');
  t.equal(await assessHelo('broken.example.com', ip, confirmed, dns), 'temperror');
  t.equal(await assessHelo('[203.0.113.5]', ip, confirmed, dns), 'literal', 'RFC 5321 address literal of the client');
  t.equal(await assessHelo('[192.0.2.1]', ip, confirmed, dns), 'literal_mismatch');
  t.equal(await assessHelo('[IPv6:2001:db8::25]', parseClientIp('2001:db8::25')!, [], dns), 'literal');
  t.equal(await assessHelo('203.0.113.5', ip, confirmed, dns), 'invalid', 'a bare address is not a HELO name');
  t.equal(await assessHelo('bad name!', ip, confirmed, dns), 'invalid');
  t.equal(await assessHelo('', ip, confirmed, dns), 'missing');
  t.same(resolver.queries, ['A other.example.com', 'A elsewhere.example.com', 'A nowhere.example.com', 'A broken.example.com'], 'no lookup for a confirmed name or a literal');
});

t.test('Authentication-Results header (RFC 8601 iprev)', async (t) => {
  const v4 = parseClientIp('203.0.113.5')!;
  t.equal(
    authenticationResults('mx.example.org', v4, { result: 'pass', confirmedNames: ['mail.example.com'] }),
    'Authentication-Results: mx.example.org; iprev=pass policy.iprev=203.0.113.5 (mail.example.com)',
  );
  t.equal(authenticationResults('mx.example.org', v4, { result: 'mismatch', confirmedNames: [] }), 'Authentication-Results: mx.example.org; iprev=fail policy.iprev=203.0.113.5');
  t.equal(authenticationResults('mx.example.org', v4, { result: 'no_ptr', confirmedNames: [] }), 'Authentication-Results: mx.example.org; iprev=permerror policy.iprev=203.0.113.5');
  t.equal(
    authenticationResults('mx.example.org', parseClientIp('2001:db8::25')!, { result: 'temperror', confirmedNames: [] }),
    'Authentication-Results: mx.example.org; iprev=temperror policy.iprev="2001:db8::25"',
    'an IPv6 value is a quoted-string',
  );
  t.same(['pass', 'no_ptr', 'no_forward', 'mismatch', 'temperror'].map((result) => iprevResultWord(result as 'pass')), ['pass', 'permerror', 'fail', 'fail', 'temperror']);
});

t.test('pass_names match verified names on label boundaries', async (t) => {
  t.equal(matchesPassNames(['mx.example.net'], ['.example.net']), 'mx.example.net');
  t.equal(matchesPassNames(['a.b.example.net'], ['.example.net']), 'a.b.example.net');
  t.equal(matchesPassNames(['evilexample.net'], ['.example.net']), undefined, 'evilexample.net is not under .example.net');
  t.equal(matchesPassNames(['example.net'], ['.example.net']), undefined, '.domain means names below it, as in Postfix');
  t.equal(matchesPassNames(['mx.partner.org'], ['mx.partner.org']), 'mx.partner.org');
  t.equal(matchesPassNames(['mx2.partner.org'], ['mx.partner.org']), undefined);
  t.equal(matchesPassNames([], ['.example.net']), undefined, 'no confirmed name, no match');
});

t.test('signals combine with the iprev decision: most severe wins, pass_names overrides', async (t) => {
  const ip = parseClientIp('203.0.113.5')!;
  const settings = { check: 'fcrdns' as const, mode: 'soft' as const, overrides: {}, replyHint: '', genericAction: 'reject' as const, heloMismatchAction: 'warn' as const };
  t.match(decide({ result: 'pass', generic: true }, ip, settings), { action: 'reject', reply: '550 5.7.1 your reverse hostname looks generic or dynamic, [203.0.113.5]', decidedBy: 'generic' });
  t.match(decide({ result: 'pass', helo: 'mismatch' }, ip, settings), { action: 'warn', reply: 'WARN fcrdns-policyd helo_mismatch: HELO name does not match your hostname, [203.0.113.5]', decidedBy: 'helo' });
  t.match(decide({ result: 'pass', helo: 'temperror' }, ip, settings), { action: 'dunno' }, 'HELO DNS trouble never counts');
  t.match(decide({ result: 'mismatch', helo: 'mismatch' }, ip, settings), { action: 'defer', decidedBy: 'iprev' }, 'soft mismatch (defer) beats a HELO warn');
  t.match(decide({ result: 'pass', generic: true, passName: true }, ip, settings), { action: 'dunno', reply: 'DUNNO', decidedBy: 'pass_name' });
  t.match(decide({ result: 'pass', generic: true }, ip, { ...settings, genericAction: 'defer' }), { reply: '450 4.7.1 your reverse hostname looks generic or dynamic, [203.0.113.5]' });
  t.match(decide({ result: 'pass', generic: true }, ip, { ...settings, genericAction: undefined }), { action: 'dunno' }, 'generic_action defaults to dunno');
});

t.test("the name is judged as a whole (issue 16's shapes): role words in any label, split addresses, run-together words", async (t) => {
  const ip = (text: string) => parseClientIp(text)!;
  // Large senders' relays: the address in the first label, the role in a later one (or a numbered role word).
  for (const level of ['conservative', 'aggressive'] as const) {
    for (const [address, name] of [
      ['192.0.2.5', '192-0-2-5.outbound-mail.esp.example.net'],
      ['192.0.2.5', '192-0-2-5.mail-mail.social.example.com'],
      ['192.0.2.5', 'a2-5.smtp-out.esp.example.com'],
      ['192.0.2.5', 'm2-5.esp.example.net'.replace('esp', 'mta.esp')],
      ['192.0.2.5', 'mx0a-00123abc.vendor.example.com'],
      ['192.0.2.5', 'web12345.mail.provider.example.com'],
      ['192.0.2.5', '192-0-2-5.static.isp.example.co.uk'],
    ] as const) {
      t.notOk(genericSignal(name, ip(address), level), `${level}: not generic: ${name}`);
    }
  }
  // End-user shapes the first-label rules missed.
  const generic: Array<[string, string, string]> = [
    ['24.201.28.90', 'modemcable090.28-201-24.mc.isp.example.ca', 'partial-address'],
    ['203.0.113.5', 'd5-203-0-113.nap.isp.example.com', 'partial-address'],
    ['203.0.113.5', 'p1234-ipngn5501city.city.isp.example.ne.jp', 'pool-line'],
    ['203.0.113.5', 'host.cable7a.isp.example.net', 'access-word'],
    ['203.0.113.5', 'x.modemcable.isp.example.net', 'access-word'],
  ];
  for (const [address, name, rule] of generic) {
    t.match(genericSignal(name, ip(address), 'conservative'), { rule }, `generic (${rule}): ${name}`);
  }
  t.match(genericSignal('user-5.isp.example.net', ip('203.0.113.5'), 'aggressive'), { rule: 'access-word', detail: 'user' });
  t.match(genericSignal('c-203-0-113-5.hsd1.pa.example.net', ip('203.0.113.5'), 'conservative'), { rule: 'address' }, 'IPv4 forms still work');
  t.match(genericSignal('2001-db8--25.dyn.example.net', ip('2001:db8::25'), 'conservative'), { rule: 'address' }, 'IPv6 forms still work');
});
