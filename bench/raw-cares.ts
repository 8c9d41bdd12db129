/**
 * Baseline (b): the same PTR + forward lookups the daemon makes, done directly with node:dns'
 * c-ares Resolver at the same concurrency and with the same settings, and nothing else. The floor
 * for the DNS part. Usage: raw-cares.ts '{"resolver":"127.0.0.1:port","concurrency":100,"requests":…,"workload":{…},"warmup":0}'
 * (warm-up lookups, of the clients after the measured ones, first).
 */
import { Resolver } from 'node:dns/promises';
import { parseClientIp, reverseName } from '../src/util/ip.js';
import { clientAddress } from './lib/stack.js';
import { clientIndex, type Workload } from './lib/workload.js';

const options = JSON.parse(process.argv[2] ?? '{}') as { resolver: string; concurrency: number; requests: number; workload: Workload; warmup?: number };
const resolver = new Resolver({ timeout: 2000, tries: 2 });
resolver.setServers([options.resolver]);
const indexOf = clientIndex(options.workload);

async function lookup(n: number): Promise<void> {
  const ip = parseClientIp(clientAddress(n))!;
  let names: string[] = [];
  try {
    names = await resolver.resolvePtr(reverseName(ip));
  } catch {
    return;
  }
  await Promise.all(names.slice(0, 10).map((name) => resolver.resolve6(name).catch(() => [])));
}

/** `count` lookups, `concurrency` at a time; latencies into `latencies` when given. */
async function run(count: number, clientOf: (i: number) => number, latencies?: Float64Array): Promise<number> {
  let next = 0;
  let errors = 0;
  await Promise.all(
    Array.from({ length: options.concurrency }, async () => {
      while (next < count) {
        const i = next++;
        const t0 = process.hrtime.bigint();
        try {
          await lookup(clientOf(i));
        } catch {
          errors++;
        }
        if (latencies) latencies[i] = Number(process.hrtime.bigint() - t0) / 1e6;
      }
    }),
  );
  return errors;
}

if (options.warmup) await run(options.warmup, (i) => indexOf(options.requests + i));
const latencies = new Float64Array(options.requests);
const started = process.hrtime.bigint();
const errors = await run(options.requests, indexOf, latencies);
const seconds = Number(process.hrtime.bigint() - started) / 1e9;
const sorted = Array.from(latencies).sort((a, b) => a - b);
const pct = (p: number) => sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? 0;
process.stdout.write(`${JSON.stringify({ requests: options.requests, rps: options.requests / seconds, p50: pct(50), p99: pct(99), errors })}\n`);
