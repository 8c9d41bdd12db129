/**
 * The JavaScript a cached request costs, without sockets or machine noise from other processes
 * (npm run bench:handler): the daemon's request handler (validation, exemptions, per-message
 * memory, judgement, decision line into the real log batcher, writing to /dev/null) driven in
 * process, against the null server's work in the same run (decode, read client_address, answer
 * DUNNO). Both decode the same ~500-byte requests, each with a new `instance` as one-recipient
 * mail has. Runs under the shipped node flags, so the garbage collector works as in production.
 * Short rounds, the two sides taking turns, and the fastest round of each reported beside the
 * median: noise on a shared machine only ever adds time, so the fastest round is the steadiest
 * figure of what the code costs.
 * Options: --requests N (default 50000 per round), --rounds R (default 40).
 * --cold: instead, every request a new client whose PTR and AAAA answers come a turn of the event
 * loop later (as c-ares' do), 100 in flight: the daemon's own CPU per new client, without c-ares,
 * sockets or the DNS servers (12 rounds of 20,000 after 3 to warm up). IN_FLIGHT=10 keeps 10
 * waiting instead of 100: the difference is what waiting requests cost the garbage collector.
 * ALLOC=1 (either mode) also prints what one more round allocates per request, by function
 * (V8's sampling heap profiler, collected objects included).
 * (Counting instructions under callgrind was tried: the log's timers and V8's background
 * compiles run at other points of a 50 times slower run, and two runs differed by 6×.)
 */
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { openSync } from 'node:fs';
import { PerformanceObserver, constants } from 'node:perf_hooks';
import { startDaemon } from '../src/daemon/daemon.js';
import { parseConfig } from '../src/config/config.js';
import type { DnsResolver } from '../src/dns/resolver.js';
import { parseClientIp, reverseName } from '../src/util/ip.js';
import { createLogger, flushLogger } from '../src/log/logger.js';
import { PolicyDecoder, type PolicyAttributes } from '../src/protocol/codec.js';
import { encodeReply } from '../src/protocol/reply.js';
import type { HandlerResult, PolicyServer, RequestContext, ServerOptions } from '../src/daemon/server.js';
import { median } from './lib/measure.js';
import { shippedNodeFlags } from './lib/shipped.js';
import { clientAddress } from './lib/stack.js';
import { policyRequest } from './lib/workload.js';

const args = process.argv.slice(2);
const option = (name: string, fallback: number) => (args.includes(name) ? Number(args[args.indexOf(name) + 1]) : fallback);
const COLD_PARENT = args.includes('--cold');
if (process.env.FCRDNS_HANDLER_BENCH_CHILD !== '1') {
  // Re-run under the shipped heap flags: the young generation's size decides what GC costs.
  // --cold keeps the daemon's cache full of 100,000 entries (~40 MB, all the unit's heap is
  // sized for) beside tsx and the bench's own clients: the heap cap is raised so the heap guard
  // does not shed (the young generation, which decides what GC costs, keeps the shipped size).
  const flags = shippedNodeFlags().map((flag) => (COLD_PARENT && flag.startsWith('--max-old-space-size=') ? '--max-old-space-size=512' : flag));
  const child = spawnSync(process.execPath, [...flags, '--import', 'tsx', fileURLToPath(import.meta.url), ...process.argv.slice(2)], {
    stdio: 'inherit',
    env: { ...process.env, FCRDNS_HANDLER_BENCH_CHILD: '1' },
  });
  process.exit(child.status ?? 1);
}

const REQUESTS = option('--requests', 50_000);
const ROUNDS = option('--rounds', 40);
const POOL = Number(process.env.POOL ?? 3000);
/** --cold: every request a new client, answered by the resolver a turn of the event loop later. */
const COLD = args.includes('--cold');
/** --cold: requests waiting on DNS at a time. */
const IN_FLIGHT = Number(process.env.IN_FLIGHT ?? 100);

/**
 * Every client passes FCrDNS: h<n>.example.com. Cached mode: the POOL clients, answered at once.
 * --cold: filled as each round's requests are made and emptied as they are answered, a turn of
 * the event loop later (c-ares' answers come each in an I/O callback of its own).
 */
const ptr = new Map<string, string[]>();
const forward = new Map<string, Array<{ address: string; ttl: number }>>();
const addClient = (n: number): void => {
  const address = clientAddress(n);
  const client = parseClientIp(address);
  if (!client) throw new Error(`bad address ${address}`);
  ptr.set(reverseName(client), [`h${n}.example.com`]);
  forward.set(`h${n}.example.com`, [{ address, ttl: 3600 }]);
};
if (!COLD) for (let n = 0; n < POOL; n++) addClient(n);
const notFound = () => Object.assign(new Error('not found'), { code: 'ENOTFOUND' });
/** A resolver's answer: at once, or (--cold) a turn later, and then forgotten. */
const answer = <T>(table: Map<string, T>, name: string): Promise<T> =>
  new Promise((resolve, reject) => {
    const settle = () => {
      const value = table.get(name);
      if (value === undefined) return reject(notFound());
      if (COLD) table.delete(name);
      resolve(value);
    };
    if (COLD) setImmediate(settle);
    else settle();
  });
/** The same, in node:dns' callback shape (the cold path asks c-ares that way). */
const answerBy = <T>(table: Map<string, T>, name: string, done: (error: NodeJS.ErrnoException | null, value: T) => void): void => {
  const settle = () => {
    const value = table.get(name);
    if (value === undefined) return done(notFound(), undefined as T);
    if (COLD) table.delete(name);
    done(null, value);
  };
  if (COLD) setImmediate(settle);
  else settle();
};
const resolver: DnsResolver = {
  resolvePtr: (name) => answer(ptr, name),
  resolve4: async () => {
    throw Object.assign(new Error('no data'), { code: 'ENODATA' });
  },
  resolve6: (name) => answer(forward, name),
  callbacks: {
    resolvePtr: (name, done) => answerBy(ptr, name, done),
    resolve4: (_name, _options, done) => setImmediate(() => done(Object.assign(new Error('no data'), { code: 'ENODATA' }), [])),
    resolve6: (name, _options, done) => answerBy(forward, name, done),
  },
};

/**
 * The requests: POOL buffers whose `instance` value (fixed width) is rewritten before each use,
 * so every request is a new message, as in the hot workload.
 */
const INSTANCE_WIDTH = 8;
const requests = Array.from({ length: POOL }, (_, n) => {
  const text = policyRequest(n).replace(/\ninstance=[^\n]*\n/, `\ninstance=${'0'.repeat(INSTANCE_WIDTH)}.0\n`);
  return { bytes: Buffer.from(text, 'latin1'), instanceAt: text.indexOf('\ninstance=') + '\ninstance='.length };
});
let counter = 0;
const nextRequest = (i: number): Buffer => {
  const request = requests[(i * 7919) % POOL]!;
  counter = (counter + 1) >>> 0;
  request.bytes.write(counter.toString(16).padStart(INSTANCE_WIDTH, '0'), request.instanceAt, 'latin1');
  return request.bytes;
};

type Handler = (attributes: PolicyAttributes, connection: RequestContext<unknown>) => HandlerResult | Promise<HandlerResult>;
let handle: Handler | undefined;
const fakeServer = async <State>(options: ServerOptions<State>): Promise<PolicyServer> => {
  handle = options.handle as Handler;
  return {
    address: 'in-process',
    port: undefined,
    stats: { open: 0, accepted: 0, refused: 0, evicted: 0, protocolErrors: 0 },
    updateLimits: () => undefined,
    close: async () => undefined,
  };
};
const logger = createLogger('info', openSync('/dev/null', 'w'));
const config = parseConfig('listen = 127.0.0.1:10040\nmode = strict\n', 'bench');
const daemon = await startDaemon({ config, logger, resolver, startServer: fakeServer });
if (!handle) throw new Error('the daemon did not start its server');
const daemonHandle: Handler = handle;
/** Requests go round 100 connections, as in the hot workload; each keeps its current message. */
const CONNECTIONS = 100;
const connections: Array<RequestContext<unknown>> = Array.from({ length: CONNECTIONS }, (_, i) => ({
  log: logger.child({ conn: i + 1, peer: `127.0.0.1:${41234 + i}` }),
  state: undefined,
  ended: false,
}));

const DUNNO = encodeReply('DUNNO');
let sink = 0;

/** CPU time the process has used (every thread: the garbage collector's helpers count too), in µs. */
const cpuMicros = (): number => {
  const { user, system } = process.cpuUsage();
  return user + system;
};

/** An event-loop turn every YIELD_EVERY requests, so the log batcher's writes go out as in the daemon. */
const YIELD_EVERY = 500;
const turn = () => new Promise((resolve) => setImmediate(resolve));

/** The null server's work per request. */
async function nullRound(count: number): Promise<number> {
  const decoder = new PolicyDecoder();
  const started = cpuMicros();
  for (let i = 0; i < count; i++) {
    if (i % YIELD_EVERY === 0) await turn();
    for (const event of decoder.push(nextRequest(i))) {
      if (event.kind === 'request' && event.attributes.get('client_address') !== undefined) sink += DUNNO.length;
    }
  }
  return ((cpuMicros() - started) * 1000) / count;
}

/** The daemon's handler per request (every answer cached: the synchronous path). */
async function daemonRound(count: number): Promise<number> {
  const decoder = new PolicyDecoder();
  let pending = 0;
  const started = cpuMicros();
  for (let i = 0; i < count; i++) {
    if (i % YIELD_EVERY === 0) await turn();
    for (const event of decoder.push(nextRequest(i))) {
      if (event.kind !== 'request') continue;
      const answer = daemonHandle(event.attributes, connections[i % CONNECTIONS]!);
      if (answer instanceof Promise) pending++;
      else if ('reply' in answer) sink += answer.reply.length;
    }
  }
  if (pending > 0) throw new Error(`${pending} requests were not answered from the cache`);
  return ((cpuMicros() - started) * 1000) / count;
}

/** Counts young-generation collections from now until `stop()` is called (after a turn, so the last is delivered). */
function scavengeCounter(): { stop: () => Promise<number> } {
  let scavenges = 0;
  const observer = new PerformanceObserver((list) => {
    for (const entry of list.getEntries()) if ((entry as { detail?: { kind?: number } }).detail?.kind === constants.NODE_PERFORMANCE_GC_MINOR) scavenges++;
  });
  observer.observe({ entryTypes: ['gc'] });
  return {
    stop: async () => {
      await new Promise((resolve) => setImmediate(resolve));
      observer.disconnect();
      return scavenges;
    },
  };
}

/** ALLOC=1: what `run` (of `count` requests) allocates per request, by function, sampled by V8. */
async function printAllocation(count: number, run: () => Promise<unknown>): Promise<void> {
  type AllocNode = { callFrame: { functionName: string; lineNumber: number }; selfSize: number; children: AllocNode[] };
  // node:inspector's callback API: inspector/promises is Node 19+, and the floor is 18.19.
  const { Session } = await import('node:inspector');
  const session = new Session();
  session.connect();
  const post = (method: string, params?: object) =>
    new Promise<unknown>((resolve, reject) => session.post(method, params, (error, result) => (error ? reject(error) : resolve(result))));
  await post('HeapProfiler.startSampling', { samplingInterval: 512, includeObjectsCollectedByMajorGC: !process.env.RETAINED, includeObjectsCollectedByMinorGC: !process.env.RETAINED });
  await run();
  const { profile } = (await post('HeapProfiler.stopSampling')) as { profile: { head: AllocNode } };
  session.disconnect();
  const self = new Map<string, number>();
  const walk = (node: AllocNode, caller: string) => {
    const here = `${node.callFrame.functionName || '(anonymous)'}:${node.callFrame.lineNumber + 1}`;
    self.set(`${here} < ${caller}`, (self.get(`${here} < ${caller}`) ?? 0) + node.selfSize);
    for (const child of node.children) walk(child, here);
  };
  walk(profile.head, '');
  let total = 0;
  for (const bytes of self.values()) total += bytes;
  console.log(`allocated ${(total / count).toFixed(0)} B per request (sampled); by function < caller:`);
  for (const [site, bytes] of [...self].sort((a, b) => b[1] - a[1]).slice(0, 40)) console.log(`${(bytes / count).toFixed(0).padStart(6)} ${site}`);
}

/**
 * --cold: ROUNDS rounds of REQUESTS requests, each from a client never seen before (so the PTR
 * and AAAA queries go to the resolver), 100 in flight at a time as at C=100; CPU per request
 * and young-generation collections per 1,000 requests.
 */
async function coldRounds(): Promise<void> {
  let nextClient = 1_000_000;
  const round = async (count: number): Promise<{ ns: number; scavenges: number }> => {
    // One buffer for the round's requests, so the bench's own buffers cost the collector nothing.
    const texts = Array.from({ length: count }, () => {
      const n = nextClient++;
      addClient(n);
      return policyRequest(n);
    });
    const all = Buffer.from(texts.join(''), 'latin1');
    const ends = new Uint32Array(count);
    texts.reduce((end, text, i) => (ends[i] = end + text.length), 0);
    texts.length = 0;
    await new Promise((resolve) => setImmediate(resolve));
    const decoder = new PolicyDecoder();
    const scavenges = scavengeCounter();
    const started = cpuMicros();
    let issued = 0;
    await new Promise<void>((resolve) => {
      let answered = 0;
      // An answer given at once (a shed request) issues the next in this loop, not by recursion.
      const issue = (): void => {
        while (issued < count) {
          const i = issued++;
          let waiting = false;
          for (const event of decoder.push(all.subarray(i === 0 ? 0 : ends[i - 1], ends[i]))) {
            if (event.kind !== 'request') continue;
            const answer = daemonHandle(event.attributes, connections[i % CONNECTIONS]!);
            if (answer instanceof Promise) {
              waiting = true;
              void answer.then(finished);
            } else count1(answer);
          }
          if (waiting) return;
        }
      };
      const count1 = (answer: HandlerResult): void => {
        if ('reply' in answer) sink += answer.reply.length;
        if (++answered === count) resolve();
      };
      const finished = (answer: HandlerResult): void => {
        count1(answer);
        if (answered < count) issue();
      };
      for (let i = 0; i < Math.min(IN_FLIGHT, count); i++) issue();
    });
    const ns = ((cpuMicros() - started) * 1000) / count;
    return { ns, scavenges: ((await scavenges.stop()) * 1000) / count };
  };
  const count = Math.min(REQUESTS, 20_000);
  for (let i = 0; i < 3; i++) await round(count);
  if (process.env.ALLOC) await printAllocation(count, () => round(count));

  const results: Array<{ ns: number; scavenges: number }> = [];
  for (let i = 0; i < Math.min(ROUNDS, 12); i++) results.push(await round(count));
  const ns = results.map((r) => r.ns);
  console.log(
    `handler, cold (every request a new client, answers a turn later), ${results.length} rounds of ${count}, ns CPU per request: ` +
      `fastest ${Math.min(...ns).toFixed(0)}, median ${median(ns).toFixed(0)}, range ${Math.min(...ns).toFixed(0)}–${Math.max(...ns).toFixed(0)}; ` +
      `young-generation collections per 1,000 requests: median ${median(results.map((r) => r.scavenges)).toFixed(1)}`,
  );
}

/** Warm the cache: every client asked once, through the real (promise) path. */
async function warm(): Promise<void> {
  const decoder = new PolicyDecoder();
  const answers: Array<Promise<HandlerResult>> = [];
  for (let i = 0; i < POOL; i++) {
    for (const event of decoder.push(nextRequest(i))) {
      if (event.kind !== 'request') continue;
      const answer = daemonHandle(event.attributes, connections[i % CONNECTIONS]!);
      if (answer instanceof Promise) answers.push(answer);
    }
  }
  await Promise.all(answers);
}

if (COLD) {
  await coldRounds();
  flushLogger(logger);
  await daemon.close();
  process.exit(0);
}

await warm();
// A warm-up round each, so both are optimised before anything is timed.
for (let i = 0; i < 4; i++) {
  await nullRound(REQUESTS);
  await daemonRound(REQUESTS);
}
if (process.env.ALLOC) {
  await printAllocation(REQUESTS, () => nullRound(REQUESTS));
  await printAllocation(REQUESTS, () => daemonRound(REQUESTS));
}
const nullNs: number[] = [];
const daemonNs: number[] = [];
let nullScavenges = 0;
let daemonScavenges = 0;
for (let round = 0; round < ROUNDS; round++) {
  let counter = scavengeCounter();
  nullNs.push(await nullRound(REQUESTS));
  nullScavenges += await counter.stop();
  counter = scavengeCounter();
  daemonNs.push(await daemonRound(REQUESTS));
  daemonScavenges += await counter.stop();
}
const range = (values: number[]) => `${Math.min(...values).toFixed(0)}–${Math.max(...values).toFixed(0)}`;
const ratios = daemonNs.map((value, i) => value / (nullNs[i] ?? 1));
const differences = daemonNs.map((value, i) => value - (nullNs[i] ?? 0));
const best = (values: number[]) => Math.min(...values);
console.log(
  `handler, cached, ${ROUNDS} rounds of ${REQUESTS}, ns CPU per request, fastest round (median, range): ` +
    `daemon ${best(daemonNs).toFixed(0)} (${median(daemonNs).toFixed(0)}, ${range(daemonNs)}), ` +
    `null server's work ${best(nullNs).toFixed(0)} (${median(nullNs).toFixed(0)}, ${range(nullNs)}); ` +
    `ratio ${(best(daemonNs) / best(nullNs)).toFixed(2)} (median ${median(ratios).toFixed(2)}), ` +
    `difference ${(best(daemonNs) - best(nullNs)).toFixed(0)} (median ${median(differences).toFixed(0)}); ` +
    `young-generation collections per 10,000 requests: daemon ${((daemonScavenges * 10_000) / (ROUNDS * REQUESTS)).toFixed(1)}, ` +
    `null server's work ${((nullScavenges * 10_000) / (ROUNDS * REQUESTS)).toFixed(1)}` +
    (sink < 0 ? '' : ''),
);
flushLogger(logger);
await daemon.close();
