/**
 * What one peer on the policy port can make the daemon hold or wait for (issue 24, cases 1 and
 * 4), against the bundle as the unit runs it (its heap flags): partial requests that never end,
 * and pipelined floods for a silent zone, each pushed past its bound (attributes per request,
 * held bytes in all, requests waiting per connection, the shared part of the waiting budget).
 * The daemon stays up, within the unit's 150 MB, and a new passing client passes meanwhile.
 * Bounds and survival are asserted, not speed. The padded flood's deadline is
 * test/integration/flood-deadline.test.ts; the fan-out into a silent forward zone test/integration/fanout-bound.test.ts.
 */
import t from 'tap';
import { LIMITS } from '../../src/config/limits.js';
import { bundleMissing, peakRssMb } from '../helpers/bundle.js';
import { GOOD, RSS_BUDGET_MB, ZONE, decisions, partialFlood, pipelinedFlood, ptrCode, silentZoneDaemon } from '../helpers/floods.js';
import { PolicyClient } from '../helpers/policy-client.js';

const missing = bundleMissing();
if (missing) {
  if (process.env.CI) t.fail(missing);
  else t.test(`PEER BOUNDS TEST SKIPPED: ${missing}`, { skip: true }, async () => undefined);
} else {
  t.test('150 connections holding ~63 KiB of unfinished requests: cut off, alive, in budget, others answered', async (t) => {
    const daemon = await silentZoneDaemon(t, 'metrics_listen = 127.0.0.1:0\n');
    // The case: ~11,000 short distinct attributes and never the empty line.
    const lines = Array.from({ length: 11_000 }, (_, i) => `k${i}=\n`).join('');
    const many = await partialFlood(t, daemon.port, 150, Buffer.from(lines.slice(0, 63 * 1024)));
    // Then what the attribute cap lets through: 9 lines of 7,000 bytes each (63 KiB), 150 times over
    // the total bound for held bytes (9.2 MiB against 8 MiB).
    const long = Array.from({ length: 9 }, (_, i) => `k${i}=${'v'.repeat(7000)}\n`).join('');
    const held = await partialFlood(t, daemon.port, 150, Buffer.from(long));
    const good = await PolicyClient.connect({ port: daemon.port });
    t.teardown(() => good.close());
    t.equal(await good.ask({ client_address: GOOD, helo_name: `good.${ZONE}` }), 'DUNNO', 'a new client is looked up and passes');
    await new Promise((resolve) => setTimeout(resolve, 500));
    const fits = Math.floor(LIMITS.maxHeldRequestBytesTotal / Buffer.byteLength(long));
    t.comment(`${many.closed()} closed for too many attributes, ${held.closed()} cut for held bytes; peak RSS ${peakRssMb(daemon.child.pid ?? 0).toFixed(1)} MB`);
    t.equal(many.closed(), 150, 'every connection of ~11,000 attributes closed');
    t.ok(held.closed() >= 150 - fits && held.closed() < 150, `${held.closed()} connections holding the most cut off (${fits} fit in the total), the others left alone`);
    t.equal(many.replied() + held.replied(), 0, 'without a reply');
    t.ok(daemon.lines.some((line) => String(line.msg).startsWith('unfinished requests hold too many bytes in all')), 'and logged');
    const metricsAddress = String(daemon.lines.find((line) => line.msg === 'metrics endpoint listening')?.metrics);
    const metrics = await (await fetch(`http://${metricsAddress}/metrics`)).text();
    const series = (name: string) => Number(new RegExp(`^${name.replace(/[{}]/g, '\\$&')} (\\d+)$`, 'm').exec(metrics)?.[1]);
    t.ok(series('fcrdns_connections_total{fate="cut"}') >= held.closed(), `and counted in the metrics (${series('fcrdns_connections_total{fate="cut"}')})`);
    t.ok(series('fcrdns_held_request_bytes') <= LIMITS.maxHeldRequestBytesTotal, `${series('fcrdns_held_request_bytes')} bytes held now, within the bound`);
    t.equal(daemon.child.exitCode, null, 'the daemon is still running');
    t.equal(await good.ask({ client_address: GOOD, helo_name: `good.${ZONE}` }), 'DUNNO');
    t.ok(peakRssMb(daemon.child.pid ?? 0) <= RSS_BUDGET_MB, `peak RSS within the unit's ${RSS_BUDGET_MB} MB`);
  });

  t.test('one peer floods 70 connections × 64 pipelined requests for a silent zone: a new passing client still passes', async (t) => {
    const daemon = await silentZoneDaemon(t);
    const flood = pipelinedFlood(daemon.port, 70, 64);
    await new Promise((resolve) => setTimeout(resolve, 300));
    const good = await PolicyClient.connect({ port: daemon.port });
    t.teardown(() => good.close());
    t.equal(await good.ask({ client_address: GOOD, helo_name: `good.${ZONE}` }), 'DUNNO', 'looked up during the flood, and passes');
    const replies = await flood;
    t.same(Object.fromEntries(replies), { '450': 70 * 64 }, 'every flood request deferred, none lost');
    const late = decisions(daemon).filter((line) => ptrCode(line) === 'EBUSY').length;
    // Each connection has at most maxWaitingPerConnection looked up at once; the rest wait, read or
    // unread, and those read whose deadline passed meanwhile are answered without DNS.
    t.ok(late > 0, `${late} of the flood answered past their deadline without DNS`);
    t.equal(daemon.child.exitCode, null);
    t.ok(peakRssMb(daemon.child.pid ?? 0) <= RSS_BUDGET_MB, `peak RSS ${peakRssMb(daemon.child.pid ?? 0).toFixed(1)} MB`);
  });

  t.test('900 connections × 6 pipelined: past the shared part of the waiting budget, a connection with none waiting is still admitted', async (t) => {
    // A deadline long enough for the whole burst to arrive before the first of it times out, on a loaded machine too.
    const daemon = await silentZoneDaemon(t, '', 8000);
    const flood = pipelinedFlood(daemon.port, 900, 6);
    await daemon.waitFor((line) => String(line.msg).startsWith('too many requests waiting for DNS'), 30_000);
    const good = await PolicyClient.connect({ port: daemon.port });
    t.teardown(() => good.close());
    t.equal(await good.ask({ client_address: GOOD, helo_name: `good.${ZONE}` }), 'DUNNO', 'looked up while the flood is over the shared bound, and passes');
    const replies = await flood;
    t.same(Object.fromEntries(replies), { '450': 900 * 6 });
    const warning = daemon.lines.find((line) => String(line.msg).startsWith('too many requests waiting for DNS'));
    t.ok(Number(warning?.waiting) < LIMITS.maxWaitingRequests, `the flood was stopped at ${String(warning?.waiting)} waiting, under the bound of ${LIMITS.maxWaitingRequests}`);
    t.ok(peakRssMb(daemon.child.pid ?? 0) <= RSS_BUDGET_MB, `peak RSS ${peakRssMb(daemon.child.pid ?? 0).toFixed(1)} MB`);
  });

}
