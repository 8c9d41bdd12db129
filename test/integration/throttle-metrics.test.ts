/**
 * The throttle store in the metrics and /healthz (issue 27 items 3 and 7): the bundle over Knot
 * with mismatch_action = throttle, metrics_listen on. With a Redis that answers, the store state
 * gauge says shared and /healthz `ok`; with the Redis killed, /healthz still answers 200 (the
 * policy listener answers, mail passes) but says `degraded: …`, the state gauge says degraded,
 * and the error and fallback counters move; throttled answers count as
 * fcrdns_decisions_total{action="throttled"}. Without an action set to throttle, none of the
 * throttle metrics is exported; in memory the state is `memory`.
 */
import http from 'node:http';
import t from 'tap';
import { bundleMissing, startBundle } from '../helpers/bundle.js';
import { freePort, knotMissing, startKnot } from '../helpers/knot.js';
import { PolicyClient } from '../helpers/policy-client.js';
import { redisMissing, startRedis } from '../helpers/redis.js';
import { whenAvailable } from '../helpers/requirements.js';

const ZONES = {
  'example.com': ['ns A 127.0.0.1', 'elsewhere A 192.0.2.200'],
  '100.51.198.in-addr.arpa': ['5 PTR elsewhere.example.com.', '6 PTR elsewhere.example.com.'],
  '113.0.203.in-addr.arpa': Array.from({ length: 40 }, (_, i) => `${i + 1} PTR elsewhere.example.com.`),
};
const THROTTLE = 'mismatch_action = throttle\nthrottle_rate = 3/hour\nthrottle_burst = 1\nskip_networks =\n';
/** A budget this test never spends: every reply passes, whichever store answers. */
const GENEROUS = 'mismatch_action = throttle\nthrottle_rate = 1000/hour\nthrottle_burst = 1000\nskip_networks =\n';
const DEGRADED = 'degraded: throttle store unavailable, budgets kept in memory\n';

function get(url: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    http.get(url, (response) => {
      let body = '';
      response.setEncoding('utf8');
      response.on('data', (chunk: string) => (body += chunk));
      response.on('end', () => resolve({ status: response.statusCode ?? 0, body }));
    }).on('error', reject);
  });
}

/** The value of one sample (`name` or `name{labels}`) in an exposition, or undefined. */
function sample(text: string, series: string): number | undefined {
  const line = text.split('\n').find((l) => l.startsWith(`${series} `));
  return line === undefined ? undefined : Number(line.slice(series.length + 1));
}

let message = 0;
async function send(client: PolicyClient, ip: string): Promise<string> {
  return client.ask({ client_address: ip, instance: `msg-${++message}` });
}

/** Polls until `check` holds of a fresh scrape (the store's state changes in the background). */
async function scrapeUntil(url: string, check: (text: string) => boolean, ms = 10_000): Promise<string> {
  const until = Date.now() + ms;
  for (;;) {
    const { body } = await get(url);
    if (check(body) || Date.now() > until) return body;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

await whenAvailable(bundleMissing() ?? knotMissing() ?? redisMissing(), 'throttle metrics and /healthz', async () => {
  const knot = await startKnot(ZONES);
  t.teardown(() => knot.stop());
  const dns = `dns_servers = 127.0.0.1:${knot.port}\n`;

  t.test('no action set to throttle: no throttle metrics; in memory: state memory, healthz ok', async (t) => {
    const off = await freePort();
    const plain = await startBundle(`listen = 127.0.0.1:0\nmetrics_listen = 127.0.0.1:${off}\n${dns}mismatch_action = warn\nskip_networks =\n`);
    t.teardown(() => plain.stop());
    t.notMatch((await get(`http://127.0.0.1:${off}/metrics`)).body, /fcrdns_throttle_/, 'no throttle metric while nothing throttles');

    const on = await freePort();
    const memory = await startBundle(`listen = 127.0.0.1:0\nmetrics_listen = 127.0.0.1:${on}\n${dns}${THROTTLE}`);
    t.teardown(() => memory.stop());
    const client = await PolicyClient.connect({ port: memory.port });
    t.teardown(() => client.close());
    t.equal(await send(client, '198.51.100.5'), 'DUNNO');
    t.match(await send(client, '198.51.100.6'), /^450 4\.7\.25 /);
    const text = (await get(`http://127.0.0.1:${on}/metrics`)).body;
    t.equal(sample(text, 'fcrdns_throttle_store_state{state="memory"}'), 1, 'state memory');
    t.equal(sample(text, 'fcrdns_throttle_store_state{state="degraded"}'), 0);
    t.equal(sample(text, 'fcrdns_throttle_store_errors_total'), 0);
    t.equal(sample(text, 'fcrdns_throttle_evicted_live_total'), 0);
    t.equal(sample(text, 'fcrdns_decisions_total{check="fcrdns",result="mismatch",action="throttled"}'), 1, 'the throttled answer counted');
    t.equal(sample(text, 'fcrdns_decisions_total{check="fcrdns",result="mismatch",action="throttle"}'), 1, 'the passed one too');
    t.same(await get(`http://127.0.0.1:${on}/healthz`), { status: 200, body: 'ok\n' });
  });

  t.test('Redis killed: /healthz 200 degraded, the state gauge and the counters move; back: ok again', async (t) => {
    const redis = await startRedis();
    t.teardown(() => redis.stop());
    const metricsPort = await freePort();
    const metrics = `http://127.0.0.1:${metricsPort}`;
    const daemon = await startBundle(`listen = 127.0.0.1:0\nmetrics_listen = 127.0.0.1:${metricsPort}\n${dns}${GENEROUS}throttle_store = redis://127.0.0.1:${redis.port}\n`);
    t.teardown(() => daemon.stop());
    await daemon.waitFor((l) => l.msg === 'throttle store connected: budgets are shared', 10_000);
    const client = await PolicyClient.connect({ port: daemon.port });
    t.teardown(() => client.close());
    t.equal(await send(client, '198.51.100.5'), 'DUNNO');
    const before = await get(`${metrics}/metrics`);
    t.equal(sample(before.body, 'fcrdns_throttle_store_state{state="shared"}'), 1, 'shared while Redis answers');
    t.ok((sample(before.body, 'fcrdns_throttle_store_script_loads_total') ?? 0) >= 1, 'the script was loaded');
    t.same(await get(`${metrics}/healthz`), { status: 200, body: 'ok\n' });

    await redis.kill();
    const started = Date.now();
    for (let i = 1; i <= 10; i++) t.equal(await send(client, `203.0.113.${i}`), 'DUNNO', `mail passes with Redis gone (${i})`);
    t.ok(Date.now() - started < 2000, `10 replies in ${Date.now() - started} ms`);
    const after = await scrapeUntil(`${metrics}/metrics`, (text) => sample(text, 'fcrdns_throttle_store_state{state="degraded"}') === 1);
    t.equal(sample(after, 'fcrdns_throttle_store_state{state="degraded"}'), 1, 'the state gauge says degraded');
    t.equal(sample(after, 'fcrdns_throttle_store_state{state="shared"}'), 0);
    t.ok((sample(after, 'fcrdns_throttle_store_errors_total') ?? 0) >= 1, `store errors counted: ${sample(after, 'fcrdns_throttle_store_errors_total')}`);
    t.ok((sample(after, 'fcrdns_throttle_store_fallbacks_total') ?? 0) >= 10, `fallbacks counted: ${sample(after, 'fcrdns_throttle_store_fallbacks_total')}`);
    t.equal(sample(after, 'fcrdns_policy_listener_up'), 1, 'the policy listener is up');
    t.same(await get(`${metrics}/healthz`), { status: 200, body: DEGRADED }, '/healthz: 200, degraded apart from down');

    await redis.start();
    t.match(await daemon.waitFor((l) => String(l.msg).startsWith('throttle store back'), 15_000), { level: 'info' }, 'one line says it is back');
    // Until the breaker has closed again, keep mail flowing.
    const until = Date.now() + 15_000;
    let health = await get(`${metrics}/healthz`);
    for (let i = 11; health.body !== 'ok\n' && Date.now() < until; i++) {
      await send(client, `203.0.113.${(i % 40) + 1}`);
      await new Promise((resolve) => setTimeout(resolve, 200));
      health = await get(`${metrics}/healthz`);
    }
    t.same(health, { status: 200, body: 'ok\n' }, 'Redis back: ok again');
  });
});
