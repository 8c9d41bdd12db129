/**
 * The throttle action end to end (issue 27 "Done when"): the bundle over Knot, with
 * mismatch_action = throttle at 3/hour and a burst of 1. A client in 198.51.100.0/24 whose PTR
 * does not confirm gets its first message through and the next ones 450 4.7.25 with the
 * rate-limit text; a second client of the same /24 is throttled too; a client of another /24 is
 * not; one message counts once, whatever its recipients. Two daemons on one Redis spend one
 * budget; Redis stopped → mail passes, replies stay fast, one log line says why.
 */
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import t from 'tap';
import { BUNDLE, BUNDLE_NODE, bundleMissing, startBundle, type LogLine, type RunningDaemon } from '../helpers/bundle.js';
import { knotMissing, startKnot } from '../helpers/knot.js';
import { PolicyClient } from '../helpers/policy-client.js';
import { redisMissing, startRedis } from '../helpers/redis.js';
import { makeTestCertificates, opensslMissing } from '../helpers/tls.js';
import { whenAvailable } from '../helpers/requirements.js';

const ZONES = {
  'example.com': ['ns A 127.0.0.1', 'elsewhere A 192.0.2.200'],
  '100.51.198.in-addr.arpa': ['5 PTR elsewhere.example.com.', '6 PTR elsewhere.example.com.'],
  '113.0.203.in-addr.arpa': ['7 PTR elsewhere.example.com.'],
};
const LIMITED = (ip: string) => `450 4.7.25 cannot find your hostname, [${ip}]; unverified host rate limited, try again later`;
const THROTTLE = 'mismatch_action = throttle\nthrottle_rate = 3/hour\nthrottle_burst = 1\nskip_networks =\n';

const run = promisify(execFile);

/** `replay --json` of a daemon's log lines under a config text; its summary. */
type NewlyListed = { clients: Array<{ key: string; count: number }> };
type ReplaySummary = { replayed: number; changed: number; changes: Record<string, number>; newly_deferred: NewlyListed; newly_rejected: NewlyListed };

async function replayUnder(lines: LogLine[], configText: string): Promise<ReplaySummary> {
  const dir = mkdtempSync(join(tmpdir(), 'fcrdns-throttle-replay-'));
  writeFileSync(join(dir, 'daemon.log'), lines.map((line) => `${JSON.stringify(line)}\n`).join(''));
  writeFileSync(join(dir, 'new.conf'), configText);
  const { stdout } = await run(BUNDLE_NODE, [BUNDLE, 'replay', '--config', join(dir, 'new.conf'), '--json', join(dir, 'daemon.log')]).catch((error: { stdout?: string }) => ({ stdout: error.stdout ?? '' }));
  return (JSON.parse(stdout) as { summary: ReplaySummary }).summary;
}

/** `report --json` of a daemon's log lines. */
async function reportOf(lines: LogLine[]): Promise<{ actions: Record<string, { messages: number; recipients: number }> }> {
  const dir = mkdtempSync(join(tmpdir(), 'fcrdns-throttle-report-'));
  writeFileSync(join(dir, 'daemon.log'), lines.map((line) => `${JSON.stringify(line)}\n`).join(''));
  const { stdout } = await run(BUNDLE_NODE, [BUNDLE, 'report', '--json', join(dir, 'daemon.log')]);
  return JSON.parse(stdout) as { actions: Record<string, { messages: number; recipients: number }> };
}

let message = 0;
/** One message with `recipients` recipients from a client; the replies, in order. */
async function send(client: PolicyClient, ip: string, recipients = 1): Promise<string[]> {
  const instance = `msg-${++message}`;
  const replies: string[] = [];
  for (let i = 0; i < recipients; i++) replies.push(await client.ask({ client_address: ip, instance, recipient: `user${i}@example.org` }));
  return replies;
}

await whenAvailable(bundleMissing() ?? knotMissing() ?? redisMissing(), 'throttle action', async () => {
  const knot = await startKnot(ZONES);
  t.teardown(() => knot.stop());
  const dns = `dns_servers = 127.0.0.1:${knot.port}\n`;

  t.test('in memory: the first message passes, the next are throttled per /24, not beyond', async (t) => {
    const daemon = await startBundle(`listen = 127.0.0.1:0\n${dns}${THROTTLE}`);
    t.teardown(() => daemon.stop());
    const client = await PolicyClient.connect({ port: daemon.port });
    t.teardown(() => client.close());
    t.same(await send(client, '198.51.100.5', 3), ['DUNNO', 'DUNNO', 'DUNNO'], 'the first message passes, for all its recipients');
    t.same(await send(client, '198.51.100.5'), [LIMITED('198.51.100.5')], 'the next is throttled');
    t.same(await send(client, '198.51.100.6'), [LIMITED('198.51.100.6')], 'so is another client of the same /24');
    t.same(await send(client, '203.0.113.7'), ['DUNNO'], 'a client of another /24 is not');
    // From its third message a client's judgement comes from its memo: it still takes its steps.
    for (let i = 0; i < 4; i++) t.same(await send(client, '203.0.113.7'), [LIMITED('203.0.113.7')], `its next message (${i + 1}) is throttled`);
    const line = await daemon.waitFor((l) => l.msg === 'decision' && l.client_address === '198.51.100.6');
    t.match(line, { action: 'throttle', result: 'mismatch', reply: LIMITED('198.51.100.6'), throttle: { key: '198.51.100.0/24', allowed: false, store: 'local' } });
    const passed = daemon.lines.find((l) => l.msg === 'decision' && l.client_address === '198.51.100.5');
    t.match(passed, { action: 'throttle', reply: 'DUNNO', throttle: { key: '198.51.100.0/24', allowed: true, left: 0 } });
    const report = await reportOf(daemon.lines);
    t.match(report.actions, { throttle: { messages: 2, recipients: 4 }, throttled: { messages: 6, recipients: 6 } }, 'report: passed and throttled apart');
    const same = await replayUnder(daemon.lines, `${dns}${THROTTLE}`);
    t.equal(same.changed, 0, 'replayed under its own config, the budgets are spent exactly as the daemon spent them');
    t.ok(same.replayed >= 4, `${same.replayed} requests replayed`);
  });

  t.test('replay: what mismatch_action = throttle at 3/hour would have done to a log written with warn', async (t) => {
    const daemon = await startBundle(`listen = 127.0.0.1:0\n${dns}mismatch_action = warn\nskip_networks =\n`);
    t.teardown(() => daemon.stop());
    const client = await PolicyClient.connect({ port: daemon.port });
    t.teardown(() => client.close());
    for (const ip of ['198.51.100.5', '198.51.100.5', '198.51.100.6', '203.0.113.7']) await send(client, ip);
    await daemon.waitFor((l) => l.msg === 'decision' && l.client_address === '203.0.113.7');
    const summary = await replayUnder(daemon.lines, `${dns}${THROTTLE}`);
    t.same(summary.changes, { 'WARN → throttle DUNNO': 2, 'WARN → throttled 450': 2 }, 'the first message of each /24 passes, the rest of 198.51.100.0/24 is throttled');
    // A throttled 450 defers the sender: the what-if lists who would newly be deferred.
    t.same(
      summary.newly_deferred.clients.map(({ key, count }) => ({ key, count })).sort((a, b) => a.key.localeCompare(b.key)),
      [
        { key: '198.51.100.5', count: 1 },
        { key: '198.51.100.6', count: 1 },
      ],
      'the throttled clients are newly deferred',
    );
    t.same(summary.newly_rejected.clients, [], 'and none rejected');
  });

  t.test('no action set to throttle: no store, no throttle field', async (t) => {
    const daemon = await startBundle(`listen = 127.0.0.1:0\n${dns}mismatch_action = warn\nthrottle_store = redis://127.0.0.1:1\nskip_networks =\n`);
    t.teardown(() => daemon.stop());
    const client = await PolicyClient.connect({ port: daemon.port });
    t.teardown(() => client.close());
    t.match((await send(client, '198.51.100.5'))[0], /^WARN /);
    const line = await daemon.waitFor((l) => l.msg === 'decision');
    t.notOk('throttle' in line, 'nothing throttled');
    t.notOk(daemon.lines.some((l) => String(l.msg).startsWith('throttle store')), 'and no store was even tried');
  });

  t.test('two daemons on one Redis spend one budget; Redis stopped: mail passes fast, one line says why', async (t) => {
    const redis = await startRedis();
    t.teardown(() => redis.stop());
    const shared = `${THROTTLE}throttle_store = redis://127.0.0.1:${redis.port}\n`;
    const daemons: RunningDaemon[] = [await startBundle(`listen = 127.0.0.1:0\n${dns}${shared}`), await startBundle(`listen = 127.0.0.1:0\n${dns}${shared}`)];
    t.teardown(() => Promise.all(daemons.map((daemon) => daemon.stop())));
    await Promise.all(daemons.map((daemon) => daemon.waitFor((l) => l.msg === 'throttle store connected: budgets are shared', 10_000)));
    const [one, two] = await Promise.all(daemons.map((daemon) => PolicyClient.connect({ port: daemon.port })));
    t.teardown(() => {
      one?.close();
      two?.close();
    });
    t.same(await send(one!, '198.51.100.5'), ['DUNNO'], 'MX 1: the first message passes');
    t.same(await send(two!, '198.51.100.6'), [LIMITED('198.51.100.6')], 'MX 2: the same /24 has no budget left');
    t.match(await daemons[1]!.waitFor((l) => l.msg === 'decision' && l.client_address === '198.51.100.6'), { throttle: { store: 'shared', allowed: false } });

    await redis.kill();
    const started = Date.now();
    const replies = await send(one!, '203.0.113.7');
    t.same(replies, ['DUNNO'], 'Redis gone: a fresh network still passes (memory answers)');
    t.ok(Date.now() - started < 1000, `answered in ${Date.now() - started} ms`);
    for (let i = 0; i < 5; i++) await send(one!, `203.0.113.${20 + i}`);
    const away = await daemons[0]!.waitFor((l) => String(l.msg).startsWith('throttle store unavailable'), 10_000);
    t.match(away, { level: 'warn' });
    t.equal(daemons[0]!.lines.filter((l) => String(l.msg).startsWith('throttle store unavailable')).length, 1, 'one line, not one per request');
  });

  const noOpenssl = opensslMissing();
  t.test('rediss:// to a Redis whose certificate a private CA signed: trusted through NODE_EXTRA_CA_CERTS, refused without', { skip: noOpenssl && `REDISS TEST SKIPPED: ${noOpenssl}` }, async (t) => {
    const dir = mkdtempSync(join(tmpdir(), 'fcrdns-tls-'));
    t.teardown(() => rmSync(dir, { recursive: true, force: true }));
    const certificates = await makeTestCertificates(dir);
    const redis = await startRedis({ tls: certificates });
    t.teardown(() => redis.stop());
    t.equal(await redis.cli('PING'), 'PONG', 'the Redis speaks TLS only');
    const config = `listen = 127.0.0.1:0\n${dns}${THROTTLE}throttle_store = ${redis.url}\n`;

    // The site's CA added to node's trust store, as a systemd drop-in or `docker run -e` would.
    const trusted = await startBundle(config, [], BUNDLE, { NODE_EXTRA_CA_CERTS: certificates.ca });
    t.teardown(() => trusted.stop());
    await trusted.waitFor((l) => l.msg === 'throttle store connected: budgets are shared', 10_000);
    const client = await PolicyClient.connect({ port: trusted.port });
    t.teardown(() => client.close());
    t.same(await send(client, '198.51.100.5'), ['DUNNO']);
    t.same(await send(client, '198.51.100.6'), [LIMITED('198.51.100.6')]);
    t.match(await trusted.waitFor((l) => l.msg === 'decision' && l.client_address === '198.51.100.6'), { throttle: { store: 'shared', allowed: false } });
    t.match(await redis.cli('KEYS', '*'), /198\.51\.100\.0\/24/, 'the budget lives in the Redis');

    // Not trusted: the certificate is refused, and mail flows from this host's memory with the reason logged.
    const untrusted = await startBundle(config);
    t.teardown(() => untrusted.stop());
    const other = await PolicyClient.connect({ port: untrusted.port });
    t.teardown(() => other.close());
    t.same(await send(other, '203.0.113.7'), ['DUNNO'], 'a fresh network passes (memory answers)');
    const away = await untrusted.waitFor((l) => String(l.msg).startsWith('throttle store unavailable'), 10_000);
    t.match(JSON.stringify(away), /certificate|self.signed|UNABLE_TO|SELF_SIGNED/i, `the reason names the certificate: ${String(away.reason)}`);
  });
});
