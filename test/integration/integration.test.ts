/**
 * The real daemon (the esbuild bundle, as shipped) against a real authoritative DNS server
 * (Knot) on loopback: exact action lines per case and mode, reload, coalescing counted at the
 * DNS server, timeouts, bad input, graceful stop.
 */
import t from 'tap';
import { whenAvailable } from '../helpers/requirements.js';
import { bundleMissing, startBundle, type RunningDaemon } from '../helpers/bundle.js';
import { knotMissing, startKnot, startSilentDns, type Knot } from '../helpers/knot.js';
import { PolicyClient } from '../helpers/policy-client.js';
import { ZONES } from '../helpers/zones.js';

const reject = (ip: string) => `550 5.7.25 cannot find your hostname, [${ip}]`;
const defer = (ip: string) => `450 4.7.25 cannot find your hostname, [${ip}]`;

await whenAvailable(knotMissing() ?? bundleMissing(), 'integration tests', main);


async function main(): Promise<void> {
  const knot: Knot = await startKnot(ZONES);
  t.teardown(() => knot.stop());
  const configFor = (settings: string) =>
    `listen = 127.0.0.1:0\ndns_servers = 127.0.0.1:${knot.port}\ndns_timeout = 1s\ndns_tries = 1\nskip_networks =\n${settings}`;
  const daemon: RunningDaemon = await startBundle(configFor('mode = strict\n'));
  t.teardown(() => daemon.stop());
  const client = await PolicyClient.connect({ port: daemon.port });
  t.teardown(() => client.close());
  const ask = (address: string, extra: Record<string, string> = {}) => client.ask({ client_address: address, ...extra });

  await t.test('strict fcrdns: every case gets its exact action line', async (t) => {
    const cases: Array<[string, string, string]> = [
      ['pass IPv4', '192.0.2.10', 'DUNNO'],
      ['pass IPv6', '2001:db8::25', 'DUNNO'],
      ['no PTR (NXDOMAIN)', '192.0.2.11', reject('192.0.2.11')],
      ['no PTR for IPv6', '2001:db8::26', reject('2001:db8::26')],
      ['PTR without forward record', '192.0.2.12', reject('192.0.2.12')],
      ['IPv6 client whose PTR name has only an A record', '2001:db8::27', reject('2001:db8::27')],
      ['mismatch', '192.0.2.13', reject('192.0.2.13')],
      ['several PTR names, one good', '192.0.2.14', 'DUNNO'],
      ['RFC 2317 CNAME-delegated PTR', '192.0.2.15', 'DUNNO'],
      ['upper-case PTR', '192.0.2.16', 'DUNNO'],
      ['IPv4-mapped client address', '::ffff:192.0.2.10', 'DUNNO'],
      ['name with both A and AAAA, IPv4 client', '192.0.2.17', 'DUNNO'],
      ['name with both A and AAAA, IPv6 client', '2001:db8::17', 'DUNNO'],
      ['numeric PTR name', '192.0.2.19', reject('192.0.2.19')],
      ['PTR SERVFAIL (zone failed to load)', '198.51.100.1', defer('198.51.100.1')],
      ['forward SERVFAIL', '192.0.2.18', defer('192.0.2.18')],
    ];
    for (const [name, address, expected] of cases) t.equal(await ask(address), expected, name);
    const mapped = await daemon.waitFor((line) => line.msg === 'decision' && line.client_address === '::ffff:192.0.2.10');
    t.match(mapped, { result: 'pass', ptr: { names: ['mail.example.com'] } });
    const upper = await daemon.waitFor((line) => line.msg === 'decision' && line.client_address === '192.0.2.16');
    t.match(upper, { ptr: { names: ['upper.example.com'] }, forward: [{ matched: true }] });
    const forwardFail = await daemon.waitFor((line) => line.msg === 'decision' && line.client_address === '192.0.2.18');
    t.match(forwardFail, { result: 'temperror', temperror_stage: 'forward', forward: [{ outcome: 'temporary', code: 'ESERVFAIL' }] });
  });

  await t.test('soft mode (reloaded with SIGHUP)', async (t) => {
    t.match(await daemon.reload(configFor('mode = soft\n')), { msg: 'reloaded' });
    t.equal(await ask('192.0.2.11'), defer('192.0.2.11'));
    t.equal(await ask('192.0.2.12'), defer('192.0.2.12'));
    t.equal(await ask('192.0.2.13'), defer('192.0.2.13'));
    t.equal(await ask('198.51.100.1'), defer('198.51.100.1'));
    t.equal(await ask('192.0.2.10'), 'DUNNO');
  });

  await t.test('monitor mode warns and lets mail through', async (t) => {
    await daemon.reload(configFor('mode = monitor\n'));
    t.equal(await ask('192.0.2.11'), 'WARN fcrdns-policyd no_ptr: cannot find your hostname, [192.0.2.11]');
    t.equal(await ask('192.0.2.13'), 'WARN fcrdns-policyd mismatch: cannot find your hostname, [192.0.2.13]');
    t.equal(await ask('192.0.2.18'), 'WARN fcrdns-policyd temperror: cannot find your hostname, [192.0.2.18]');
  });

  await t.test('check = reverse: only a missing PTR counts', async (t) => {
    await daemon.reload(configFor('check = reverse\nmode = strict\n'));
    t.equal(await ask('192.0.2.11'), '550 5.7.25 cannot find your reverse hostname, [192.0.2.11]');
    t.equal(await ask('192.0.2.13'), 'DUNNO', 'mismatch is logged, not acted on');
    t.equal(await ask('192.0.2.12'), 'DUNNO');
    t.equal(await ask('192.0.2.18'), 'DUNNO', 'a forward SERVFAIL does not matter to the reverse check');
    t.equal(await ask('198.51.100.1'), '450 4.7.25 cannot find your reverse hostname, [198.51.100.1]');
    const from = daemon.lines.length;
    t.equal(await ask('192.0.2.13'), 'DUNNO');
    const logged = await daemon.waitFor((line) => line.msg === 'decision' && line.client_address === '192.0.2.13', 5000, from);
    t.match(logged, { result: 'mismatch', action: 'dunno' }, 'the full result is computed whatever check is');
  });

  await t.test('overrides and reply_hint from the file', async (t) => {
    await daemon.reload(configFor('mode = soft\nmismatch_action = reject\nreply_hint = see https://example.org/rdns\n'));
    t.equal(await ask('192.0.2.13'), '550 5.7.25 cannot find your hostname, [192.0.2.13]; see https://example.org/rdns');
    t.equal(await ask('192.0.2.11'), '450 4.7.25 cannot find your hostname, [192.0.2.11]; see https://example.org/rdns');
  });

  await t.test('a broken config on reload is reported and the old one stays', async (t) => {
    const answer = await daemon.reload('mode = strickt\nbogus_key = 1\n');
    t.match(answer, { msg: /^reload failed/, level: 'error' });
    t.match((answer.problems as string[]).join('\n'), /fcrdns-policyd\.conf:1: mode: invalid value "strickt"/);
    t.match((answer.problems as string[]).join('\n'), /fcrdns-policyd\.conf:2: bogus_key: unknown key/);
    t.equal(await ask('192.0.2.13'), '550 5.7.25 cannot find your hostname, [192.0.2.13]; see https://example.org/rdns');
  });

  await t.test('coalescing: 100 concurrent requests for one uncached IP → one PTR and one A query', async (t) => {
    await daemon.reload(configFor('mode = strict\n'));
    const clients = await Promise.all(Array.from({ length: 100 }, () => PolicyClient.connect({ port: daemon.port })));
    t.teardown(() => clients.forEach((c) => c.close()));
    const before = await knot.queryCounts();
    // The HELO name is the client's own confirmed name, as a well-run MTA's is: no HELO lookup.
    const burst = () => Promise.all(clients.map((c) => c.ask({ client_address: '203.0.113.50', helo_name: 'burst.example.com' })));
    const first = await burst();
    t.ok(first.every((reply) => reply === 'DUNNO'), 'all 100 pass');
    const middle = await knot.queryCounts();
    t.equal((middle.PTR ?? 0) - (before.PTR ?? 0), 1, 'one PTR query at the DNS server');
    t.equal((middle.A ?? 0) - (before.A ?? 0), 1, 'one A query at the DNS server');
    t.equal((middle.AAAA ?? 0) - (before.AAAA ?? 0), 0, 'no AAAA query for an IPv4 client');
    const second = await burst();
    t.ok(second.every((reply) => reply === 'DUNNO'));
    const after = await knot.queryCounts();
    t.same(after, middle, 'the second burst sends no query at all');
    await daemon.waitFor(() => daemon.lines.filter((line) => line.msg === 'decision' && line.client_address === '203.0.113.50').length === 200);
    const decisions = daemon.lines.filter((line) => line.msg === 'decision' && line.client_address === '203.0.113.50');
    t.equal(decisions.length, 200);
    t.equal(decisions[0]?.cached, false, 'the first decision asked DNS');
    t.ok(decisions.slice(100).every((line) => line.cached === true), 'the second burst is logged as cached');
  });

  await t.test('bad input to the real daemon: closed without reply, others unaffected, no crash', async (t) => {
    for (const input of ['garbage\n\n', Buffer.from([0, 1, 2, 255, 10, 10]), 'request=smtpd_access_policy\nclient_address=not-an-ip\n\n']) {
      const bad = await PolicyClient.connect({ port: daemon.port });
      await bad.send(input);
      t.ok(await bad.closedWithoutReply());
      t.equal(await ask('192.0.2.13'), reject('192.0.2.13'));
    }
    t.equal(daemon.child.exitCode, null, 'still running');
  });

  await t.test('a resolver that never answers: temperror within the deadline', async (t) => {
    const silent = await startSilentDns();
    t.teardown(() => silent.stop());
    const slow = await startBundle(
      `listen = 127.0.0.1:0\ndns_servers = 127.0.0.1:${silent.port}\ndns_timeout = 500ms\ndns_tries = 2\nmode = strict\nskip_networks =\n`,
    );
    t.teardown(() => slow.stop());
    const c = await PolicyClient.connect({ port: slow.port });
    t.teardown(() => c.close());
    const started = Date.now();
    t.equal(await c.ask({ client_address: '192.0.2.10' }), defer('192.0.2.10'));
    const elapsed = Date.now() - started;
    t.ok(elapsed < 500 * 2 + 1000, `answered in ${elapsed} ms, within dns_timeout × dns_tries + margin`);
    t.ok(silent.received() >= 1, 'the query did reach the silent server');
    const line = await slow.waitFor((l) => l.msg === 'decision');
    t.match(line, { result: 'temperror', temperror_stage: 'ptr', ptr: { outcome: 'temporary', code: 'ETIMEOUT' } });
  });

  await t.test('SIGTERM answers what is in flight and exits 0', async (t) => {
    const c = await PolicyClient.connect({ port: daemon.port });
    t.equal(await c.ask({ client_address: '192.0.2.10' }), 'DUNNO');
    t.equal(await daemon.stop('SIGTERM'), 0);
    t.ok(daemon.lines.some((line) => line.msg === 'stopped'), 'logged "stopped" before exit');
    t.ok(await c.closedWithoutReply());
  });
}

