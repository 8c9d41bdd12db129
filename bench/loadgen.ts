/**
 * Load generator that behaves like Postfix: C persistent connections, each sending one request
 * and waiting for its reply before the next (no pipelining unless --pipeline K). Prints one JSON
 * line: req/s, latency percentiles, errors, action mix.
 * Usage: loadgen.ts '{"port":…,"connections":100,"requests":20000,"workload":{…},"warmup":0,"pipeline":1}'
 */
import net from 'node:net';
import { clientIndex, policyRequest, type Workload } from './lib/workload.js';

interface Options {
  port: number;
  connections: number;
  requests: number;
  workload: Workload;
  warmup?: number;
  pipeline?: number;
}

const options = JSON.parse(process.argv[2] ?? '{}') as Options;

function connect(): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const socket = net.connect(options.port, '127.0.0.1', () => resolve(socket));
    socket.setNoDelay(true);
    socket.once('error', reject);
  });
}

async function run(requests: number, indexOf: (i: number) => number, latencies: Float64Array | undefined) {
  const sockets = await Promise.all(Array.from({ length: options.connections }, connect));
  const actions = new Map<string, number>();
  let next = 0;
  let errors = 0;
  const pipeline = options.pipeline ?? 1;
  const started = process.hrtime.bigint();
  await Promise.all(
    sockets.map(
      (socket) =>
        new Promise<void>((resolve) => {
          let buffer = '';
          let inFlight: Array<{ started: bigint; index: number }> = [];
          const sendMore = () => {
            while (inFlight.length < pipeline && next < requests) {
              const index = next++;
              inFlight.push({ started: process.hrtime.bigint(), index });
              socket.write(policyRequest(indexOf(index)));
            }
            if (inFlight.length === 0) {
              socket.end();
              resolve();
            }
          };
          socket.setEncoding('latin1');
          socket.on('data', (chunk: string) => {
            buffer += chunk;
            let end;
            while ((end = buffer.indexOf('\n\n')) !== -1) {
              const reply = buffer.slice(0, end);
              buffer = buffer.slice(end + 2);
              const request = inFlight.shift();
              if (!request) continue;
              if (latencies) latencies[request.index] = Number(process.hrtime.bigint() - request.started) / 1e6;
              const action = reply.startsWith('action=') ? reply.slice(7).split(' ')[0] ?? '' : 'malformed';
              actions.set(action, (actions.get(action) ?? 0) + 1);
              if (!reply.startsWith('action=')) errors++;
            }
            sendMore();
          });
          socket.on('error', () => {
            errors += inFlight.length;
            inFlight = [];
            resolve();
          });
          socket.on('close', () => {
            errors += inFlight.length;
            inFlight = [];
            resolve();
          });
          sendMore();
        }),
    ),
  );
  const seconds = Number(process.hrtime.bigint() - started) / 1e9;
  sockets.forEach((socket) => socket.destroy());
  return { seconds, errors, actions: Object.fromEntries(actions) };
}

const indexOf = clientIndex(options.workload);
// The warm-up's clients follow the measured ones, so a cold workload's measured clients stay new.
if (options.warmup) await run(options.warmup, (i) => indexOf(options.requests + i), undefined);
const latencies = new Float64Array(options.requests);
const result = await run(options.requests, indexOf, latencies);
const sorted = Array.from(latencies).sort((a, b) => a - b);
const pct = (p: number) => sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? 0;
process.stdout.write(
  `${JSON.stringify({
    requests: options.requests,
    connections: options.connections,
    rps: options.requests / result.seconds,
    p50: pct(50),
    p90: pct(90),
    p99: pct(99),
    p999: pct(99.9),
    errors: result.errors,
    actions: result.actions,
  })}\n`,
);
process.exit(0);
