/**
 * Load generator that behaves like Postfix: C persistent connections, each sending one request
 * and waiting for its reply before the next (no pipelining unless --pipeline K). Prints one JSON
 * line: req/s, latency percentiles, errors, action mix, and the share of measured requests whose
 * client had not been sent before (warm-up included): the requests that must wait for DNS.
 * With "rate" it is open-loop instead: request i is due at start + i / rate whatever the replies
 * do, goes out on the first idle connection, and its latency counts from when it was due, so a
 * stall is not hidden by the load generator slowing down with the server (coordinated omission).
 * Usage: loadgen.ts '{"port":…,"connections":100,"requests":20000,"workload":{…},"warmup":0,"pipeline":1,"rate":1000}'
 */
import net from 'node:net';
import { clientIndex, heloName, policyRequest, type Workload } from './lib/workload.js';

interface Options {
  port: number;
  connections: number;
  requests: number;
  workload: Workload;
  warmup?: number;
  pipeline?: number;
  /** Requests per second, open-loop (one in flight per connection). */
  rate?: number;
}

const options = JSON.parse(process.argv[2] ?? '{}') as Options;

function connect(): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const socket = net.connect(options.port, '127.0.0.1', () => resolve(socket));
    socket.setNoDelay(true);
    socket.once('error', reject);
  });
}

/** Each complete reply in a connection's data, in order: `onReply(reply)`. Returns what is left. */
function takeReplies(buffer: string, onReply: (reply: string) => void): string {
  let rest = buffer;
  let end;
  while ((end = rest.indexOf('\n\n')) !== -1) {
    onReply(rest.slice(0, end));
    rest = rest.slice(end + 2);
  }
  return rest;
}

/** The reply's action word (DUNNO, 450, …), counted; a reply without `action=` is an error. */
function countAction(reply: string, actions: Map<string, number>): boolean {
  const ok = reply.startsWith('action=');
  const action = ok ? reply.slice(7).split(' ')[0] ?? '' : 'malformed';
  actions.set(action, (actions.get(action) ?? 0) + 1);
  return ok;
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
              const n = indexOf(index);
              socket.write(policyRequest(n, heloName(n, options.workload)));
            }
            if (inFlight.length === 0) {
              socket.end();
              resolve();
            }
          };
          socket.setEncoding('latin1');
          socket.on('data', (chunk: string) => {
            buffer = takeReplies(buffer + chunk, (reply) => {
              const request = inFlight.shift();
              if (!request) return;
              if (latencies) latencies[request.index] = Number(process.hrtime.bigint() - request.started) / 1e6;
              if (!countAction(reply, actions)) errors++;
            });
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

/** Open-loop: requests due at a fixed rate, each on an idle connection, latency from when it was due. */
async function runAtRate(requests: number, rate: number, indexOf: (i: number) => number, latencies: Float64Array | undefined) {
  const sockets = await Promise.all(Array.from({ length: options.connections }, connect));
  const actions = new Map<string, number>();
  let errors = 0;
  let next = 0;
  let answered = 0;
  const idle: net.Socket[] = [...sockets];
  /** The request each busy connection waits on. */
  const waitingOn = new Map<net.Socket, { due: bigint; index: number }>();
  const started = process.hrtime.bigint();
  const dueAt = (i: number) => started + BigInt(Math.round((i * 1e9) / rate));
  await new Promise<void>((resolve) => {
    const finishOne = () => {
      if (++answered === requests) resolve();
    };
    const dispatch = () => {
      const now = process.hrtime.bigint();
      while (next < requests && idle.length > 0 && dueAt(next) <= now) {
        const socket = idle.pop()!;
        const index = next++;
        const due = dueAt(index);
        const n = indexOf(index);
        waitingOn.set(socket, { due, index });
        socket.write(policyRequest(n, heloName(n, options.workload)));
      }
      if (next < requests) setTimeout(dispatch, 1);
    };
    for (const socket of sockets) {
      let buffer = '';
      socket.setEncoding('latin1');
      socket.on('data', (chunk: string) => {
        buffer = takeReplies(buffer + chunk, (reply) => {
          const request = waitingOn.get(socket);
          if (!request) return;
          waitingOn.delete(socket);
          if (latencies) latencies[request.index] = Number(process.hrtime.bigint() - request.due) / 1e6;
          if (!countAction(reply, actions)) errors++;
          idle.push(socket);
          finishOne();
        });
      });
      socket.on('close', () => {
        if (waitingOn.delete(socket)) {
          errors++;
          finishOne();
        }
      });
    }
    dispatch();
  });
  const seconds = Number(process.hrtime.bigint() - started) / 1e9;
  sockets.forEach((socket) => socket.destroy());
  return { seconds, errors, actions: Object.fromEntries(actions) };
}

const indexOf = clientIndex(options.workload);
const runLoad = (requests: number, index: (i: number) => number, latencies: Float64Array | undefined) =>
  options.rate ? runAtRate(requests, options.rate, index, latencies) : run(requests, index, latencies);
// The warm-up's clients follow the measured ones, so a cold workload's measured clients stay new.
// The clients sent so far, to tell how many measured requests were for a new client.
const seen = new Set<number>();
const noting = (index: (i: number) => number, measured: { fresh: number; flags: Uint8Array } | undefined) => (i: number) => {
  const n = index(i);
  if (!seen.has(n)) {
    seen.add(n);
    if (measured) {
      measured.fresh++;
      measured.flags[i] = 1;
    }
  }
  return n;
};
if (options.warmup) await runLoad(options.warmup, noting((i) => indexOf(options.requests + i), undefined), undefined);
const latencies = new Float64Array(options.requests);
const measuredNew = { fresh: 0, flags: new Uint8Array(options.requests) };
const result = await runLoad(options.requests, noting(indexOf, measuredNew), latencies);
const percentile = (values: number[]) => {
  const sorted = values.sort((a, b) => a - b);
  return (p: number) => sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? 0;
};
const pct = percentile(Array.from(latencies));
// The same for requests whose client was sent before (repeat senders) and for new clients apart.
const known = percentile(Array.from(latencies).filter((_, i) => measuredNew.flags[i] === 0));
const fresh = percentile(Array.from(latencies).filter((_, i) => measuredNew.flags[i] === 1));
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
    newClientShare: measuredNew.fresh / options.requests,
    p99Known: known(99),
    p50New: fresh(50),
    p99New: fresh(99),
  })}\n`,
);
process.exit(0);
