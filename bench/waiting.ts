/**
 * Cached clients while new ones wait on a silent zone (issue 18): a cached client asks every
 * 5 ms on its own connection, first alone (the baseline, same run), then while CONNECTIONS ×
 * PIPELINED requests for distinct new clients wait on a reverse zone that never answers
 * (`dns_timeout = 1s`, `dns_tries = 1`), against the shipped bundle. Prints the cached client's
 * p50 / p99 / max in both phases, the ratio of the loaded p99 to the baseline's, the number
 * answered at once past the waiting bound, and peak RSS. Target: loaded p99 ≤ 50 ms.
 * Run: npm run bench:waiting [-- CONNECTIONS PIPELINED ROUNDS].
 */
import { parseClientIp, reverseName } from '../src/util/ip.js';
import { peakRssMb, startBundle } from '../test/helpers/bundle.js';
import { startHostileDns } from '../test/helpers/hostile-dns.js';
import { PolicyClient, policyRequest } from '../test/helpers/policy-client.js';
import { median } from './lib/measure.js';

const CONNECTIONS = Number(process.argv[2] ?? 400);
const PIPELINED = Number(process.argv[3] ?? 25);
const ROUNDS = Number(process.argv[4] ?? 3);
const GOOD = '2001:db8:bad:1::25';
const ZONE = 'hostile.example';

const quantile = (sorted: readonly number[], q: number): number => sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * q))] ?? 0;

async function cachedLoop(good: PolicyClient, until: () => boolean): Promise<number[]> {
  const latencies: number[] = [];
  while (!until()) {
    const sent = performance.now();
    const reply = await good.ask({ client_address: GOOD, helo_name: `good.${ZONE}` });
    if (reply !== 'DUNNO') throw new Error(`cached client got ${reply}`);
    latencies.push(performance.now() - sent);
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
  return latencies.sort((a, b) => a - b);
}

async function round(n: number): Promise<{ baseP99: number; loadedP99: number }> {
  const dns = await startHostileDns({ forwardZone: ZONE, style: 'silent', good: { reverseName: reverseName(parseClientIp(GOOD)!), address: GOOD } });
  const daemon = await startBundle(['listen = 127.0.0.1:0', 'mode = strict', `dns_servers = 127.0.0.1:${dns.port}`, 'dns_timeout = 1s', 'dns_tries = 1', ''].join('\n'));
  try {
    const good = await PolicyClient.connect({ port: daemon.port });
    await good.ask({ client_address: GOOD, helo_name: `good.${ZONE}` });
    const baseEnd = performance.now() + 2_000;
    const base = await cachedLoop(good, () => performance.now() > baseEnd);
    const connections = await Promise.all(Array.from({ length: CONNECTIONS }, () => PolicyClient.connect({ port: daemon.port })));
    let done = false;
    const loadedRun = cachedLoop(good, () => done);
    await Promise.all(
      connections.map(async (connection, c) => {
        await connection.send(
          Array.from({ length: PIPELINED }, (_, i) => policyRequest({ client_address: `2001:db8:bad::${(c * PIPELINED + i + 1).toString(16)}`, helo_name: `h.${ZONE}` })).join(''),
        );
        for (let i = 0; i < PIPELINED; i++) await connection.reply(30_000);
      }),
    );
    done = true;
    const loaded = await loadedRun;
    connections.forEach((connection) => connection.close());
    good.close();
    await new Promise((resolve) => setTimeout(resolve, 500));
    const busy = daemon.lines.filter((line) => line.msg === 'decision' && (line.ptr as { code?: string } | undefined)?.code === 'EBUSY').length;
    const row = (label: string, sorted: number[]) =>
      `${label} p50 ${quantile(sorted, 0.5).toFixed(1)} ms, p99 ${quantile(sorted, 0.99).toFixed(1)} ms, max ${(sorted.at(-1) ?? 0).toFixed(1)} ms (${sorted.length} requests)`;
    console.log(`round ${n}: ${row('alone', base)}; ${row('loaded', loaded)}`);
    console.log(
      `  loaded/alone p99 ${(quantile(loaded, 0.99) / quantile(base, 0.99)).toFixed(1)}x; ${busy} of ${CONNECTIONS * PIPELINED} answered at once (EBUSY); peak RSS ${peakRssMb(daemon.child.pid ?? 0).toFixed(1)} MB`,
    );
    return { baseP99: quantile(base, 0.99), loadedP99: quantile(loaded, 0.99) };
  } finally {
    await daemon.stop();
    await dns.stop();
  }
}

const results = [];
for (let n = 1; n <= ROUNDS; n++) results.push(await round(n));
const loaded = median(results.map((r) => r.loadedP99));
const base = median(results.map((r) => r.baseP99));
console.log(`median of ${ROUNDS}: cached p99 alone ${base.toFixed(1)} ms, loaded ${loaded.toFixed(1)} ms (${(loaded / base).toFixed(1)}x; target loaded p99 <= 50 ms: ${loaded <= 50 ? 'met' : 'NOT met'})`);
