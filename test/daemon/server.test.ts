/**
 * The daemon over a real socket, with a zone-table resolver: replies, ordering, bad input,
 * connection limits. Bad input must never crash the daemon or disturb another connection.
 */
import { mkdtempSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { parseConfig } from '../../src/config/config.js';
import { startDaemon, type Daemon } from '../../src/daemon/daemon.js';
import { createStreamLogger } from '../../src/log/logger.js';
import { PolicyClient, policyRequest } from '../helpers/policy-client.js';
import { zoneResolver, type ZoneTable } from '../helpers/zone-resolver.js';

const ZONES: ZoneTable = {
  ptr: {
    '5.113.0.203.in-addr.arpa': ['mail.example.com'],
    '6.113.0.203.in-addr.arpa': ['wrong.example.com'],
    '7.113.0.203.in-addr.arpa': { delayMs: 150, answer: ['slow.example.com'] },
    '9.113.0.203.in-addr.arpa': { error: 'ESERVFAIL' },
  },
  a: {
    'mail.example.com': ['203.0.113.5'],
    'wrong.example.com': ['198.51.100.1'],
    'slow.example.com': ['203.0.113.7'],
  },
};

interface Harness {
  daemon: Daemon;
  lines: Array<Record<string, unknown>>;
  queries: string[];
  port: number;
}

async function harness(
  t: { teardown(fn: () => unknown): void },
  configText = '',
  options: { idleTimeoutMs?: number; requestReadTimeoutMs?: number; clock?: { now(): number }; zones?: ZoneTable } = {},
): Promise<Harness> {
  const lines: Array<Record<string, unknown>> = [];
  const logger = createStreamLogger('debug', { write: (line: string) => lines.push(JSON.parse(line) as Record<string, unknown>) });
  const { zones, ...daemonOptions } = options;
  const resolver = zoneResolver(zones ?? ZONES);
  const config = parseConfig(`listen = 127.0.0.1:0\nmode = strict\n${configText}`, 'test.conf');
  const daemon = await startDaemon({ config, logger, resolver, ...daemonOptions });
  t.teardown(() => daemon.close());
  return { daemon, lines, queries: resolver.queries, port: daemon.port ?? 0 };
}

const decisions = (lines: Array<Record<string, unknown>>) => lines.filter((line) => line.msg === 'decision');

t.test('answers pass, mismatch, no PTR and temperror with the exact action line', async (t) => {
  const { port, lines } = await harness(t);
  const client = await PolicyClient.connect({ port });
  t.teardown(() => client.close());
  t.equal(await client.ask({ client_address: '203.0.113.5' }), 'DUNNO');
  t.equal(await client.ask({ client_address: '203.0.113.6' }), '550 5.7.25 cannot find your hostname, [203.0.113.6]');
  t.equal(await client.ask({ client_address: '203.0.113.8' }), '550 5.7.25 cannot find your hostname, [203.0.113.8]');
  t.equal(await client.ask({ client_address: '203.0.113.9' }), '450 4.7.25 cannot find your hostname, [203.0.113.9]');
  const logged = decisions(lines);
  t.equal(logged.length, 4);
  t.match(logged[0], {
    client_address: '203.0.113.5',
    helo_name: 'mail.example.com',
    protocol_state: 'RCPT',
    result: 'pass',
    ptr: { outcome: 'answer', names: ['mail.example.com'] },
    forward: [{ name: 'mail.example.com', outcome: 'answer', addresses: ['203.0.113.5'], matched: true }],
    action: 'dunno',
    cached: false,
  });
  t.type(logged[0]?.duration_ms, 'number');
  t.ok('instance' in (logged[0] ?? {}) && 'queue_id' in (logged[0] ?? {}));
  t.match(logged[3], { result: 'temperror', temperror_stage: 'ptr', ptr: { outcome: 'temporary', code: 'ESERVFAIL' }, action: 'defer' });
});

t.test('a judgement is reused only while its answers are fresh, for the same HELO name and configuration', async (t) => {
  let now = 1_000_000;
  const clock = { now: () => now };
  const zones: ZoneTable = {
    ptr: { '20.113.0.203.in-addr.arpa': ['moving.example.com'] },
    a: { 'moving.example.com': ['203.0.113.20'] },
  };
  // helo_mismatch_action on, so that the HELO name is looked up (with dunno it never is).
  const { daemon, port, lines, queries } = await harness(t, 'helo_mismatch_action = warn\n', { clock, zones });
  const client = await PolicyClient.connect({ port });
  t.teardown(() => client.close());
  const ask = (helo = 'moving.example.com') => client.ask({ client_address: '203.0.113.20', helo_name: helo });
  t.equal(await ask(), 'DUNNO');
  // The HELO lookup (here the PTR name itself) starts with the PTR lookup: order aside, one each.
  t.same([...queries].sort(), ['A moving.example.com', 'PTR 20.113.0.203.in-addr.arpa']);
  t.equal(await ask(), 'DUNNO', 'judged again from the same answers');
  t.equal(queries.length, 2, 'no query while the answers are fresh');
  // The forward record moves away; the cached answer (TTL 300 s) still stands until it expires.
  zones.a = { 'moving.example.com': ['198.51.100.9'] };
  now += 299_000;
  t.equal(await ask(), 'DUNNO');
  t.equal(queries.length, 2);
  now += 2_000;
  t.equal(await ask(), '550 5.7.25 cannot find your hostname, [203.0.113.20]', 'the expired answer is asked again');
  t.equal(queries.at(-1), 'A moving.example.com');
  t.equal(queries.length, 3, 'the PTR answer (ptr_ttl 15 min) is still fresh');
  // Another HELO name is judged on its own (and looked up); the verdict's HELO status follows it.
  t.equal(await ask('other.example.net'), '550 5.7.25 cannot find your hostname, [203.0.113.20]');
  t.equal(decisions(lines).at(-1)?.helo, 'mismatch');
  t.equal(queries.at(-1), 'A other.example.net');
  // A new configuration is applied to the next request at once.
  daemon.reload(parseConfig('listen = 127.0.0.1:0\nmode = soft\nhelo_mismatch_action = warn\n', 'test.conf'));
  t.equal(await ask(), '450 4.7.25 cannot find your hostname, [203.0.113.20]');
  t.same(
    decisions(lines).map((line) => line.cached),
    [false, true, true, false, false, true],
  );
});

t.test('requests written at buffer sizes 4096, 128, 16 and 1 get the same answers', async (t) => {
  const { port } = await harness(t);
  for (const size of [4096, 128, 16, 1]) {
    const client = await PolicyClient.connect({ port });
    t.equal(await client.ask({ client_address: '203.0.113.6' }, size), '550 5.7.25 cannot find your hostname, [203.0.113.6]', `chunk ${size}`);
    t.equal(await client.ask({ client_address: '203.0.113.5' }, size), 'DUNNO', `chunk ${size}`);
    client.close();
  }
});

t.test('pipelined requests are answered in order even when a later one finishes first', async (t) => {
  const { port } = await harness(t);
  const client = await PolicyClient.connect({ port });
  t.teardown(() => client.close());
  await client.send(
    policyRequest({ client_address: '203.0.113.7' }) + // slow DNS: 150 ms
      policyRequest({ client_address: '203.0.113.6' }) +
      policyRequest({ client_address: '203.0.113.5' }),
  );
  t.equal(await client.reply(), 'DUNNO', 'slow pass first');
  t.equal(await client.reply(), '550 5.7.25 cannot find your hostname, [203.0.113.6]');
  t.equal(await client.reply(), 'DUNNO');
});

t.test('CRLF requests are answered with LF-only replies', async (t) => {
  const { port } = await harness(t);
  const client = await PolicyClient.connect({ port });
  t.teardown(() => client.close());
  await client.send(policyRequest({ client_address: '203.0.113.6' }).replace(/\n/g, '\r\n'));
  t.equal(await client.reply(), '550 5.7.25 cannot find your hostname, [203.0.113.6]');
  t.notMatch(client.unread, /\r/);
});

t.test('a message with many recipients is judged and logged once', async (t) => {
  const { port, lines, queries } = await harness(t);
  const client = await PolicyClient.connect({ port });
  t.teardown(() => client.close());
  for (let i = 0; i < 5; i++) {
    t.equal(await client.ask({ client_address: '203.0.113.6', helo_name: 'wrong.example.com', instance: 'abc.1', recipient: `r${i}@example.org` }), '550 5.7.25 cannot find your hostname, [203.0.113.6]');
  }
  t.equal(decisions(lines).length, 1);
  t.equal(queries.length, 2);
  t.equal(await client.ask({ client_address: '203.0.113.6', helo_name: 'wrong.example.com', instance: 'abc.2' }), '550 5.7.25 cannot find your hostname, [203.0.113.6]');
  t.match(decisions(lines)[1], { cached: true }, 'a new message is logged again, from the cache');
});

t.test('exemptions answer DUNNO and say why in the log', async (t) => {
  const { port, lines, queries } = await harness(t, 'skip_networks = 198.51.100.0/24\n');
  const client = await PolicyClient.connect({ port });
  t.teardown(() => client.close());
  t.equal(await client.ask({ client_address: '203.0.113.6', recipient: 'postmaster@example.org' }), 'DUNNO');
  t.equal(await client.ask({ client_address: '203.0.113.6', sasl_username: 'alice' }), 'DUNNO');
  t.equal(await client.ask({ client_address: '198.51.100.20' }), 'DUNNO');
  t.same(decisions(lines).map((line) => [line.result, line.reason]), [
    ['skipped', 'pass_recipient'],
    ['skipped', 'authenticated'],
    ['skipped', 'skip_network'],
  ]);
  t.equal(queries.length, 0);
});

t.test('bad input never crashes the daemon; another connection keeps getting answers', async (t) => {
  const { port, lines } = await harness(t, '', { requestReadTimeoutMs: 300 });
  const good = await PolicyClient.connect({ port });
  t.teardown(() => good.close());
  t.equal(await good.ask({ client_address: '203.0.113.5' }), 'DUNNO');
  const bad: Array<[string, string | Buffer]> = [
    ['garbage line', 'this is not a policy request\n\n'],
    ['binary bytes', Buffer.from(Array.from({ length: 512 }, (_, i) => (i * 37) % 256))],
    ['missing client_address', 'request=smtpd_access_policy\nprotocol_state=RCPT\n\n'],
    ['invalid client_address', 'request=smtpd_access_policy\nclient_address=999.1.1.1\n\n'],
    ['client_address with a zone id', 'request=smtpd_access_policy\nclient_address=fe80::1%eth0\n\n'],
    ['unknown request type', 'request=something_else\nclient_address=192.0.2.1\n\n'],
    ['oversize line', `request=smtpd_access_policy\nhelo_name=${'x'.repeat(9000)}\n\n`],
    ['oversize request', `${Array.from({ length: 800 }, (_, i) => `a${i}=${'y'.repeat(90)}`).join('\n')}\n\n`],
  ];
  for (const [name, input] of bad) {
    const client = await PolicyClient.connect({ port });
    await client.send(input);
    t.ok(await client.closedWithoutReply(), `${name}: closed without a reply`);
    t.equal(await good.ask({ client_address: '203.0.113.6' }), '550 5.7.25 cannot find your hostname, [203.0.113.6]', `after ${name}`);
  }
  // A half request followed by silence is cut off by the read deadline.
  const half = await PolicyClient.connect({ port });
  await half.send('request=smtpd_access_policy\nclient_addr');
  t.ok(await half.closedWithoutReply(3000), 'half request then silence: closed without reply');
  t.equal(await good.ask({ client_address: '203.0.113.5' }), 'DUNNO');
  const warnings = lines.filter((line) => line.level === 'warn' && String(line.msg).includes('broken request'));
  t.equal(warnings.length, bad.length + 1, 'each broken request is logged as a warning');
  t.ok(warnings.every((line) => typeof line.problem === 'string'));
});

t.test('a request after a good one on the same connection can still be trouble; the good one is answered', async (t) => {
  const { port } = await harness(t);
  const client = await PolicyClient.connect({ port });
  await client.send(`${policyRequest({ client_address: '203.0.113.5' })}garbage\n\n`);
  t.equal(await client.reply(), 'DUNNO');
  t.ok(await client.closedWithoutReply());
});

t.test('many idle connections do not disturb a working one', async (t) => {
  const { port, daemon } = await harness(t);
  const idle = await Promise.all(Array.from({ length: 300 }, () => PolicyClient.connect({ port })));
  t.teardown(() => idle.forEach((client) => client.close()));
  const good = await PolicyClient.connect({ port });
  t.teardown(() => good.close());
  for (let i = 0; i < 20; i++) t.equal(await good.ask({ client_address: '203.0.113.5' }), 'DUNNO');
  t.equal(daemon.serverStats.open, 301);
});

t.test('at max_connections the longest-idle connection is closed to make room', async (t) => {
  const { port, daemon, lines } = await harness(t, 'max_connections = 3\n');
  const first = await PolicyClient.connect({ port });
  const second = await PolicyClient.connect({ port });
  const third = await PolicyClient.connect({ port });
  t.equal(await first.ask({ client_address: '203.0.113.5' }), 'DUNNO', 'first is now the most recently active');
  const fourth = await PolicyClient.connect({ port });
  t.ok(await second.closedWithoutReply(), 'the longest-idle connection was closed');
  t.equal(await fourth.ask({ client_address: '203.0.113.5' }), 'DUNNO', 'the newcomer is served');
  t.equal(await first.ask({ client_address: '203.0.113.5' }), 'DUNNO');
  t.equal(daemon.serverStats.evicted, 1);
  t.ok(lines.some((line) => String(line.msg).includes('connection limit reached')));
  [first, third, fourth].forEach((client) => client.close());
});

t.test('peers outside listen_allow are closed at once and logged', async (t) => {
  const { port, lines, daemon } = await harness(t, 'listen_allow = 192.0.2.0/24\n');
  const client = await PolicyClient.connect({ port });
  await client.send(policyRequest({ client_address: '203.0.113.5' }));
  t.ok(await client.closedWithoutReply());
  t.equal(daemon.serverStats.refused, 1);
  t.ok(lines.some((line) => line.level === 'warn' && String(line.msg).includes('listen_allow') && line.peer === '127.0.0.1'));
});

t.test('idle connections close after the idle timeout', async (t) => {
  const { port } = await harness(t, '', { idleTimeoutMs: 200 });
  const client = await PolicyClient.connect({ port });
  t.equal(await client.ask({ client_address: '203.0.113.5' }), 'DUNNO');
  t.ok(await client.closedWithoutReply(3000));
});

t.test('unix socket listener with the configured mode', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'fcrdns-'));
  const path = join(dir, 'policy.sock');
  const lines: unknown[] = [];
  const daemon = await startDaemon({
    config: parseConfig(`listen = unix:${path}\nlisten_mode = 0600\nmode = strict\n`, 'unix.conf'),
    logger: createStreamLogger('info', { write: (line: string) => lines.push(line) }),
    resolver: zoneResolver(ZONES),
  });
  t.teardown(() => daemon.close());
  t.equal(statSync(path).mode & 0o777, 0o600);
  const client = await PolicyClient.connect({ path });
  t.equal(await client.ask({ client_address: '203.0.113.6' }), '550 5.7.25 cannot find your hostname, [203.0.113.6]');
  client.close();
});

t.test('close answers what is in flight, then closes', async (t) => {
  const { port, daemon } = await harness(t);
  const client = await PolicyClient.connect({ port });
  await client.send(policyRequest({ client_address: '203.0.113.7' })); // 150 ms of DNS
  await new Promise((resolve) => setTimeout(resolve, 30));
  const closing = daemon.close();
  t.equal(await client.reply(), 'DUNNO');
  await closing;
  t.ok(await client.closedWithoutReply());
});

t.test('when most clients are in skip_networks, a warning says Postfix may sit behind NAT', async (t) => {
  const lines: Array<Record<string, unknown>> = [];
  const daemon = await startDaemon({
    config: parseConfig('listen = 127.0.0.1:0\n', 'nat.conf'),
    logger: createStreamLogger('info', { write: (line: string) => lines.push(JSON.parse(line) as Record<string, unknown>) }),
    resolver: zoneResolver(ZONES),
  });
  t.teardown(() => daemon.close());
  const client = await PolicyClient.connect({ port: daemon.port ?? 0 });
  t.teardown(() => client.close());
  for (let i = 0; i < 200; i++) t.equal(await client.ask({ client_address: `10.0.${i % 250}.1` }), 'DUNNO');
  const warning = lines.find((line) => line.level === 'warn' && String(line.msg).includes('NAT'));
  t.match(warning, { skipped: 200, of: 200 });
});
