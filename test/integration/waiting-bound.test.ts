/**
 * Requests waiting on a silent zone (issue 18): 1,250 connections × 8 pipelined requests for
 * 10,000 distinct new clients whose reverse zone never answers, against the daemon as the unit
 * runs it. Each connection has at most LIMITS.maxWaitingPerConnection waiting, and connections
 * that have one waiting share only part of LIMITS.maxWaitingRequests (issue 24): the number
 * waiting for DNS is bounded (the rest are answered per temperror_action at once, `EBUSY`, or
 * when their deadline passed while they waited for their turn), the daemon stays up and in its
 * memory budget, and a cached client on its own
 * connection is not held hostage when the deadlines fire together: answers are paced
 * (src/dns/pacing.ts). The latency bound here is loose on purpose (a loaded CI machine); the
 * figure itself is printed, and was 1.7 s at p99 before the pacing.
 */
import t from 'tap';
import { LIMITS } from '../../src/config/limits.js';
import { parseClientIp, reverseName } from '../../src/util/ip.js';
import { bundleMissing, peakRssMb, startBundle } from '../helpers/bundle.js';
import { startHostileDns } from '../helpers/hostile-dns.js';
import { PolicyClient, policyRequest } from '../helpers/policy-client.js';

const CONNECTIONS = 1250;
const PIPELINED = 8;
const GOOD = '2001:db8:bad:1::25';
const ZONE = 'hostile.example';

const missing = bundleMissing();
if (missing) {
  if (process.env.CI) t.fail(missing);
  else t.test(`WAITING BOUND TEST SKIPPED: ${missing}`, { skip: true }, async () => undefined);
} else {
  t.test(`${CONNECTIONS * PIPELINED} requests on a silent zone: bounded, alive, and a cached client is answered promptly`, async (t) => {
    const dns = await startHostileDns({ forwardZone: ZONE, style: 'silent', good: { reverseName: reverseName(parseClientIp(GOOD)!), address: GOOD } });
    t.teardown(() => dns.stop());
    const daemon = await startBundle(['listen = 127.0.0.1:0', 'mode = strict', `dns_servers = 127.0.0.1:${dns.port}`, 'dns_timeout = 1s', 'dns_tries = 1', ''].join('\n'));
    t.teardown(() => daemon.stop());
    const good = await PolicyClient.connect({ port: daemon.port });
    t.teardown(() => good.close());
    t.equal(await good.ask({ client_address: GOOD, helo_name: `good.${ZONE}` }), 'DUNNO', 'the good client, now cached');

    const connections = await Promise.all(Array.from({ length: CONNECTIONS }, () => PolicyClient.connect({ port: daemon.port })));
    t.teardown(() => connections.forEach((connection) => connection.close()));
    let done = false;
    const latencies: number[] = [];
    const goodReplies = new Set<string>();
    const goodLoop = (async () => {
      while (!done) {
        const sent = performance.now();
        goodReplies.add(await good.ask({ client_address: GOOD, helo_name: `good.${ZONE}` }));
        latencies.push(performance.now() - sent);
        await new Promise((resolve) => setTimeout(resolve, 5));
      }
    })();
    const replies = new Map<string, number>();
    await Promise.all(
      connections.map(async (connection, c) => {
        const batch = Array.from({ length: PIPELINED }, (_, i) =>
          policyRequest({ client_address: `2001:db8:bad::${(c * PIPELINED + i + 1).toString(16)}`, helo_name: `h.${ZONE}` }),
        ).join('');
        await connection.send(batch);
        for (let i = 0; i < PIPELINED; i++) {
          const reply = await connection.reply(20_000);
          const kind = reply.slice(0, 3);
          replies.set(kind, (replies.get(kind) ?? 0) + 1);
        }
      }),
    );
    done = true;
    await goodLoop;
    const total = CONNECTIONS * PIPELINED;
    t.equal(daemon.child.exitCode, null, 'the daemon is still running');
    t.same(Object.fromEntries(replies), { '450': total }, 'every request deferred (temperror), none lost');
    t.same([...goodReplies], ['DUNNO'], `the cached client got DUNNO ${latencies.length} times`);
    const sorted = [...latencies].sort((a, b) => a - b);
    const p99 = sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * 0.99))] ?? 0;
    const rss = peakRssMb(daemon.child.pid ?? 0);
    t.comment(
      `cached client: ${sorted.length} requests, p50 ${sorted[Math.floor(sorted.length / 2)]?.toFixed(1)} ms, p99 ${p99.toFixed(1)} ms, ` +
        `max ${sorted.at(-1)?.toFixed(1)} ms; peak RSS ${rss.toFixed(1)} MB`,
    );
    t.ok(p99 <= 500, `cached client p99 ${p99.toFixed(1)} ms (no stall of seconds)`);
    t.ok(rss <= 150, `peak RSS ${rss.toFixed(1)} MB within the unit's 150 MB`);
    await new Promise((resolve) => setTimeout(resolve, 600));
    const decisions = daemon.lines.filter((line) => line.msg === 'decision');
    const busy = decisions.filter((line) => (line.ptr as { code?: string } | undefined)?.code === 'EBUSY').length;
    const warning = daemon.lines.find((line) => line.level === 'warn' && String(line.msg).startsWith('too many requests waiting for DNS'));
    t.ok(warning, 'the waiting bound was reached, and a warning says so');
    t.ok(Number(warning?.waiting) <= LIMITS.maxWaitingRequests, `${String(warning?.waiting)} waiting when it was, within ${LIMITS.maxWaitingRequests}`);
    // How many are turned away depends on how fast the burst arrives against the first deadlines
    // (3,279 of an earlier 10,000 under a loaded CI run), so only "some were" holds.
    t.ok(busy > 0 && busy < total, `${busy} answered without DNS`);
    t.equal(decisions.length, total + latencies.length + 1, 'one decision line per request');
  });
}
