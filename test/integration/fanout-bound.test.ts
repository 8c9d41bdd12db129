/**
 * What a waiting request costs (issue 24, case 3): PTR answers of 50 names each, every name in a
 * forward zone that never answers, with max_ptr_names = 50 — the issue's 960 pipelined requests,
 * then enough at once to pass LIMITS.maxQueriesInFlight — against the bundle as the unit runs it.
 * Past the bound a request is not fanned out (forward temperror, EBUSY); the daemon stays up and
 * within the unit's 150 MB, and a good client passes afterwards.
 */
import t from 'tap';
import { parseClientIp, reverseName } from '../../src/util/ip.js';
import { LIMITS } from '../../src/config/limits.js';
import { bundleMissing, peakRssMb, startBundle } from '../helpers/bundle.js';
import { startFanoutDns } from '../helpers/fanout-dns.js';
import { GOOD, RSS_BUDGET_MB, config, decisions, pipelinedFlood } from '../helpers/floods.js';
import { PolicyClient } from '../helpers/policy-client.js';

const missing = bundleMissing();
if (missing) {
  if (process.env.CI) t.fail(missing);
  else t.test(`FANOUT BOUND TEST SKIPPED: ${missing}`, { skip: true }, async () => undefined);
} else {
  t.test('PTR answers of 50 names each into a forward zone that never answers, max_ptr_names = 50: alive, bounded', async (t) => {
    const good = { reverseName: reverseName(parseClientIp(GOOD)!), address: GOOD };
    const dns = await startFanoutDns({ zone: 'fanout.example', names: LIMITS.maxPtrNamesCeiling, good });
    t.teardown(() => dns.stop());
    const daemon = await startBundle(config(dns.port, 'max_ptr_names = 50'));
    t.teardown(() => daemon.stop());
    // The issue's case (15 × 64 = 960), then enough at once to pass the bound on queries in flight.
    const issue = await pipelinedFlood(daemon.port, 15, 64);
    t.same(Object.fromEntries(issue), { '450': 960 }, 'the 960 deferred (temperror)');
    const wide = await pipelinedFlood(daemon.port, 120, LIMITS.maxWaitingPerConnection, 0, 0x8000);
    t.same(Object.fromEntries(wide), { '450': 120 * LIMITS.maxWaitingPerConnection });
    const refused = decisions(daemon).filter((line) =>
      ((line.forward ?? []) as Array<{ code?: string }>).some((check) => check.code === 'EBUSY'),
    ).length;
    t.ok(refused > 0, `${refused} requests not fanned out past ${LIMITS.maxQueriesInFlight} queries in flight (forward EBUSY)`);
    t.comment(`forward queries sent: ${dns.asked.forward}; peak RSS ${peakRssMb(daemon.child.pid ?? 0).toFixed(1)} MB`);
    const client = await PolicyClient.connect({ port: daemon.port });
    t.teardown(() => client.close());
    t.equal(await client.ask({ client_address: GOOD, helo_name: 'good.fanout.example' }), 'DUNNO');
    t.equal(daemon.child.exitCode, null);
    t.ok(peakRssMb(daemon.child.pid ?? 0) <= RSS_BUDGET_MB, `peak RSS ${peakRssMb(daemon.child.pid ?? 0).toFixed(1)} MB`);
  });
}
