/**
 * Beyond the built-ins, through the daemon over a real socket: the Authentication-Results
 * PREPEND once per message, generic_action, helo_mismatch_action, pass_names, and the
 * Prometheus endpoint scraped after known traffic.
 */
import http from 'node:http';
import t from 'tap';
import { parseConfig } from '../../src/config/config.js';
import { startDaemon } from '../../src/daemon/daemon.js';
import { createStreamLogger } from '../../src/log/logger.js';
import { PolicyClient } from '../helpers/policy-client.js';
import { zoneResolver } from '../helpers/zone-resolver.js';

const ZONES = {
  ptr: {
    '5.113.0.203.in-addr.arpa': ['mail.example.com'],
    '6.113.0.203.in-addr.arpa': ['wrong.example.com'],
    '7.113.0.203.in-addr.arpa': ['203-0-113-7.dyn.example.net'],
    '8.113.0.203.in-addr.arpa': ['203-0-113-8.pool.partner.example.org'],
  },
  a: {
    'mail.example.com': ['203.0.113.5'],
    'wrong.example.com': ['198.51.100.1'],
    '203-0-113-7.dyn.example.net': ['203.0.113.7'],
    '203-0-113-8.pool.partner.example.org': ['203.0.113.8'],
    'other.example.com': ['192.0.2.1'],
  },
};

async function start(t: { teardown(fn: () => unknown): void }, configText: string) {
  const lines: Array<Record<string, unknown>> = [];
  const logger = createStreamLogger('info', { write: (line: string) => lines.push(JSON.parse(line) as Record<string, unknown>) });
  const resolver = zoneResolver(ZONES);
  const daemon = await startDaemon({ config: parseConfig(`listen = 127.0.0.1:0\nskip_networks =\n${configText}`, 'beyond.conf'), logger, resolver });
  t.teardown(() => daemon.close());
  const client = await PolicyClient.connect({ port: daemon.port ?? 0 });
  t.teardown(() => client.close());
  return { daemon, lines, client, queries: resolver.queries };
}

const decisions = (lines: Array<Record<string, unknown>>) => lines.filter((line) => line.msg === 'decision');

t.test('Authentication-Results is prepended once per message, however many recipients', async (t) => {
  const { client, lines } = await start(t, 'mode = soft\nauthres_header = yes\nauthserv_id = mx.example.org\n');
  const message = { client_address: '203.0.113.5', helo_name: 'mail.example.com', instance: 'm1' };
  t.equal(await client.ask({ ...message, recipient: 'a@example.org' }), 'PREPEND Authentication-Results: mx.example.org; iprev=pass policy.iprev=203.0.113.5 (mail.example.com)');
  t.equal(await client.ask({ ...message, recipient: 'b@example.org' }), 'DUNNO');
  t.equal(await client.ask({ ...message, recipient: 'c@example.org' }), 'DUNNO');
  t.equal(await client.ask({ ...message, instance: 'm2' }), 'PREPEND Authentication-Results: mx.example.org; iprev=pass policy.iprev=203.0.113.5 (mail.example.com)', 'the next message gets its own');
  t.equal(await client.ask({ client_address: '203.0.113.6', instance: 'm3' }), '450 4.7.25 cannot find your hostname, [203.0.113.6]', 'a deferred message gets no header');
  t.match(decisions(lines)[0], { authres: 'mx.example.org; iprev=pass policy.iprev=203.0.113.5 (mail.example.com)' });
  const monitor = await start(t, 'mode = monitor\nauthres_header = yes\nauthserv_id = mx.example.org\n');
  t.equal(await monitor.client.ask({ client_address: '203.0.113.6', instance: 'm4' }), 'PREPEND Authentication-Results: mx.example.org; iprev=fail policy.iprev=203.0.113.6', 'monitor mode: the header records the failure');
  t.equal(await monitor.client.ask({ client_address: '203.0.113.9', instance: 'm5' }), 'PREPEND Authentication-Results: mx.example.org; iprev=permerror policy.iprev=203.0.113.9');
});

t.test('a message goes on over a new connection when Postfix reconnects in the middle of it', async (t) => {
  // Postfix closes a policy connection after smtpd_policy_service_max_idle / max_ttl and opens
  // a new one for the next request (POSTFIX-FACTS 2), possibly between two recipients.
  const { daemon, client, lines } = await start(t, 'mode = soft\nauthres_header = yes\nauthserv_id = mx.example.org\n');
  const message = { client_address: '203.0.113.5', helo_name: 'mail.example.com', instance: 'r1' };
  t.equal(await client.ask({ ...message, recipient: 'a@example.org' }), 'PREPEND Authentication-Results: mx.example.org; iprev=pass policy.iprev=203.0.113.5 (mail.example.com)');
  // Another smtpd's connection, busy with its own message meanwhile, is not disturbed.
  const other = await PolicyClient.connect({ port: daemon.port ?? 0 });
  t.teardown(() => other.close());
  t.equal(await other.ask({ client_address: '203.0.113.5', helo_name: 'mail.example.com', instance: 'o1' }), 'PREPEND Authentication-Results: mx.example.org; iprev=pass policy.iprev=203.0.113.5 (mail.example.com)');
  client.close();
  while (daemon.serverStats.open > 1) await new Promise((resolve) => setTimeout(resolve, 5));
  const again = await PolicyClient.connect({ port: daemon.port ?? 0 });
  t.teardown(() => again.close());
  t.equal(await again.ask({ ...message, recipient: 'b@example.org' }), 'DUNNO', 'no second header for the same message');
  t.equal(await again.ask({ ...message, recipient: 'c@example.org' }), 'DUNNO');
  t.equal(await other.ask({ client_address: '203.0.113.5', helo_name: 'mail.example.com', instance: 'o1', recipient: 'x@example.org' }), 'DUNNO');
  t.equal(await again.ask({ ...message, client_address: '203.0.113.6', recipient: 'd@example.org' }), '450 4.7.25 cannot find your hostname, [203.0.113.6]', 'the same instance from another client is another message');
  t.same(
    decisions(lines).map((line) => [line.instance, line.client_address]),
    [
      ['r1', '203.0.113.5'],
      ['o1', '203.0.113.5'],
      ['r1', '203.0.113.6'],
    ],
    'each message logged once',
  );
});

t.test('a reload forgets the verdicts given to open messages', async (t) => {
  const { daemon, client, lines } = await start(t, 'mode = soft\n');
  const message = { client_address: '203.0.113.6', helo_name: 'wrong.example.com', instance: 'z1' };
  t.equal(await client.ask(message), '450 4.7.25 cannot find your hostname, [203.0.113.6]');
  daemon.reload(parseConfig('listen = 127.0.0.1:0\nskip_networks =\nmode = monitor\n', 'beyond.conf'));
  t.equal(await client.ask({ ...message, recipient: 'b@example.org' }), 'WARN fcrdns-policyd mismatch: cannot find your hostname, [203.0.113.6]', 'judged again under the new configuration');
  t.equal(decisions(lines).length, 2);
});

t.test('generic names get their own class and action', async (t) => {
  const { client, lines } = await start(t, 'mode = strict\ngeneric_action = reject\n');
  t.equal(await client.ask({ client_address: '203.0.113.7', helo_name: '203-0-113-7.dyn.example.net' }), '550 5.7.1 your reverse hostname looks generic or dynamic, [203.0.113.7]');
  t.match(decisions(lines)[0], { result: 'generic', generic: { name: '203-0-113-7.dyn.example.net', reason: 'address in name' }, action: 'reject', decided_by: 'generic' });
  t.equal(await client.ask({ client_address: '203.0.113.5', helo_name: 'mail.example.com' }), 'DUNNO', 'a server name passes');
  const lenient = await start(t, 'mode = strict\n');
  t.equal(await lenient.client.ask({ client_address: '203.0.113.7', helo_name: '203-0-113-7.dyn.example.net' }), 'DUNNO', 'generic_action defaults to dunno');
  t.match(decisions(lenient.lines)[0], { result: 'generic', action: 'dunno' }, 'and the class is logged');
});

t.test('HELO versus PTR is logged for every decision, with helo_mismatch_action', async (t) => {
  const { client, lines } = await start(t, 'mode = strict\nhelo_mismatch_action = defer\n');
  t.equal(await client.ask({ client_address: '203.0.113.5', helo_name: 'MAIL.example.com' }), 'DUNNO');
  t.equal(await client.ask({ client_address: '203.0.113.5', helo_name: '[203.0.113.5]' }), 'DUNNO', 'RFC 5321 address literal of the client');
  t.equal(await client.ask({ client_address: '203.0.113.5', helo_name: 'other.example.com' }), '450 4.7.1 HELO name does not match your hostname, [203.0.113.5]');
  t.equal(await client.ask({ client_address: '203.0.113.5', helo_name: '[192.0.2.1]' }), '450 4.7.1 HELO name does not match your hostname, [203.0.113.5]');
  t.same(decisions(lines).map((line) => line.helo), ['confirmed', 'literal', 'mismatch', 'literal_mismatch']);
});

t.test('a HELO lookup is made only when helo_mismatch_action can use it, and then alongside the PTR lookup', async (t) => {
  const unused = await start(t, 'mode = strict\n');
  t.equal(await unused.client.ask({ client_address: '203.0.113.5', helo_name: 'other.example.com' }), 'DUNNO');
  t.same(unused.queries, ['PTR 5.113.0.203.in-addr.arpa', 'A mail.example.com'], 'default (dunno): 1 PTR + 1 A, no query for the HELO name');
  t.equal(await unused.client.ask({ client_address: '203.0.113.5', helo_name: 'mail.example.com' }), 'DUNNO');
  t.same(decisions(unused.lines).map((line) => line.helo), ['unchecked', 'confirmed'], 'what is known without DNS is still logged');

  const used = await start(t, 'mode = strict\nhelo_mismatch_action = defer\n');
  t.equal(await used.client.ask({ client_address: '203.0.113.5', helo_name: 'other.example.com' }), '450 4.7.1 HELO name does not match your hostname, [203.0.113.5]');
  t.same(used.queries, ['A other.example.com', 'PTR 5.113.0.203.in-addr.arpa', 'A mail.example.com'], 'the HELO query starts with the PTR query, not after the forward one');
  t.equal(await used.client.ask({ client_address: '203.0.113.6', helo_name: 'wrong.example.com' }), '550 5.7.25 cannot find your hostname, [203.0.113.6]');
  t.equal(used.queries.filter((query) => query === 'A wrong.example.com').length, 1, 'a HELO name that is also the PTR name costs one query');
});

t.test('pass_names: only a forward-confirmed name, on label boundaries', async (t) => {
  const { client, lines } = await start(t, 'mode = strict\ngeneric_action = reject\npass_names = .partner.example.org, mx.example.net\n');
  t.equal(await client.ask({ client_address: '203.0.113.8', helo_name: 'x.example.com' }), 'DUNNO', 'a generic name under .partner.example.org is let through');
  t.match(decisions(lines)[0], { result: 'generic', pass_name: '203-0-113-8.pool.partner.example.org', decided_by: 'pass_name' });
  t.equal(await client.ask({ client_address: '203.0.113.6' }), '550 5.7.25 cannot find your hostname, [203.0.113.6]', 'an unconfirmed name never matches');
  const boundary = await start(t, 'mode = strict\ngeneric_action = reject\npass_names = .example.org\n');
  t.equal(
    await boundary.client.ask({ client_address: '203.0.113.7', helo_name: '203-0-113-7.dyn.example.net' }),
    '550 5.7.1 your reverse hostname looks generic or dynamic, [203.0.113.7]',
    '.example.org does not match example.net names',
  );
});

function get(url: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    http.get(url, (response) => {
      let body = '';
      response.on('data', (chunk: Buffer) => (body += chunk.toString()));
      response.on('end', () => resolve({ status: response.statusCode ?? 0, body }));
    }).on('error', reject);
  });
}

t.test('Prometheus metrics after known traffic, and /healthz', async (t) => {
  const { daemon, client } = await start(t, 'mode = strict\nmetrics_listen = 127.0.0.1:0\n');
  t.ok(daemon.metricsAddress, `metrics on ${daemon.metricsAddress}`);
  const base = `http://${daemon.metricsAddress}`;
  t.same(await get(`${base}/healthz`), { status: 200, body: 'ok\n' });
  t.equal((await get(`${base}/nope`)).status, 404);
  await client.ask({ client_address: '203.0.113.5', helo_name: 'mail.example.com' }); // pass: PTR + A
  await client.ask({ client_address: '203.0.113.5', helo_name: 'mail.example.com' }); // pass, all from cache
  await client.ask({ client_address: '203.0.113.6', helo_name: 'wrong.example.com' }); // mismatch: PTR + A
  await client.ask({ client_address: '203.0.113.9', helo_name: 'mail.example.com' }); // no PTR
  await client.ask({ client_address: '203.0.113.5', recipient: 'postmaster@example.org' }); // skipped
  const bad = await PolicyClient.connect({ port: daemon.port ?? 0 });
  await bad.send('garbage\n\n');
  await bad.closedWithoutReply();
  // A request begun and not finished: its bytes are held, and counted, until it ends.
  const unfinished = 'request=smtpd_access_policy\nclient_address=203.0.113.5\n';
  const slow = await PolicyClient.connect({ port: daemon.port ?? 0 });
  t.teardown(() => slow.close());
  await slow.send(unfinished);
  await new Promise((resolve) => setTimeout(resolve, 50));
  const { status, body } = await get(`${base}/metrics`);
  t.equal(status, 200);
  const value = (series: string) => {
    const line = body.split('\n').find((row) => row.startsWith(`${series} `));
    return line === undefined ? undefined : Number(line.slice(series.length + 1));
  };
  t.equal(value('fcrdns_decisions_total{check="fcrdns",result="pass",action="dunno"}'), 2);
  t.equal(value('fcrdns_decisions_total{check="fcrdns",result="mismatch",action="reject"}'), 1);
  t.equal(value('fcrdns_decisions_total{check="fcrdns",result="no_ptr",action="reject"}'), 1);
  t.equal(value('fcrdns_decisions_total{check="fcrdns",result="skipped",action="dunno"}'), 1);
  t.equal(value('fcrdns_dns_queries_total{type="ptr",outcome="answer"}'), 2);
  t.equal(value('fcrdns_dns_queries_total{type="ptr",outcome="not_found"}'), 1);
  t.equal(value('fcrdns_dns_queries_total{type="a",outcome="answer"}'), 2);
  t.equal(value('fcrdns_dns_query_duration_seconds_count{type="ptr",outcome="answer"}'), 2);
  t.equal(value('fcrdns_dns_query_duration_seconds_count{type="ptr",outcome="not_found"}'), 1);
  t.equal(value('fcrdns_cache_events_total{event="miss"}'), 5);
  t.equal(value('fcrdns_cache_events_total{event="hit"}'), 2, 'second pass: PTR + A (no HELO lookups while helo_mismatch_action is dunno)');
  t.equal(value('fcrdns_protocol_errors_total'), 1);
  t.equal(value('fcrdns_open_connections'), 2, 'the test client and the unfinished one; the broken one is closed');
  t.equal(value('fcrdns_connections_total{fate="accepted"}'), 4, 'the test client, the broken one, the unfinished one, and the /healthz probe (which is no decision)');
  t.equal(value('fcrdns_connections_total{fate="cut"}'), 0);
  t.equal(value('fcrdns_connections_total{fate="revoked"}'), 0);
  t.equal(value('fcrdns_held_request_bytes'), Buffer.byteLength(unfinished), 'the unfinished request\'s bytes');
  t.equal(value('fcrdns_policy_listener_up'), 1);
  t.comment(body.split('\n').filter((row) => row.startsWith('fcrdns_') && !row.startsWith('fcrdns_process') && !row.startsWith('fcrdns_nodejs')).join('\n'));
});
