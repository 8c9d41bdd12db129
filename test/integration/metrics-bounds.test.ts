/**
 * The metrics port bounded, and health that tells the truth (issue 24, items 5 and 10), on the
 * real daemon (the bundle, with the unit's heap flags) under a 1,024 open-file limit set with
 * prlimit(1): 1,100 idle metrics connections leave the policy port answering; a peer outside
 * metrics_allow is closed; idle and half-sent metrics connections are closed in time; /healthz
 * answers 503 while the policy listener cannot answer (file descriptors exhausted, or its unix
 * socket's path removed) and 200 again once it can.
 */
import { execFileSync, spawn } from 'node:child_process';
import http from 'node:http';
import { mkdtempSync, readdirSync, readFileSync, unlinkSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { BUNDLE, bundleMissing, startBundle, type RunningDaemon } from '../helpers/bundle.js';
import { hasCommand, whenAvailable } from '../helpers/requirements.js';
import { PolicyClient, type Target } from '../helpers/policy-client.js';

const FD_LIMIT = 1024;

/** The daemon's metrics port, from its log. */
async function metricsPort(daemon: RunningDaemon): Promise<number> {
  const line = await daemon.waitFor((l) => l.msg === 'metrics endpoint listening');
  const address = String(line.metrics);
  return Number(address.slice(address.lastIndexOf(':') + 1));
}

/** Lower the running daemon's open-file limit, as `LimitNOFILE=1024` or `ulimit -n 1024` would. */
function limitFiles(pid: number): void {
  execFileSync('prlimit', [`--pid=${pid}`, `--nofile=${FD_LIMIT}:${FD_LIMIT}`]);
  const line = readFileSync(`/proc/${pid}/limits`, 'utf8').split('\n').find((row) => row.startsWith('Max open files'));
  if (!line?.includes(String(FD_LIMIT))) throw new Error(`prlimit did not apply: ${line}`);
}

const openFiles = (pid: number): number => readdirSync(`/proc/${pid}/fd`).length;

/** One GET over the agent (a kept-alive socket when it has one): status and body. */
function get(port: number, path: string, agent: http.Agent | false = false): Promise<{ status: number; body: string; reused: boolean }> {
  return new Promise((resolve, reject) => {
    const request = http.get({ host: '127.0.0.1', port, path, agent, timeout: 8000 }, (response) => {
      let body = '';
      response.setEncoding('utf8');
      response.on('data', (chunk: string) => (body += chunk));
      response.on('end', () => resolve({ status: response.statusCode ?? 0, body, reused: request.reusedSocket }));
    });
    request.on('timeout', () => request.destroy(new Error('no answer in time')));
    request.on('error', reject);
  });
}

/** Open `count` TCP connections that send nothing; resolves once each has connected or failed. */
async function idleConnections(port: number, count: number): Promise<net.Socket[]> {
  const sockets: net.Socket[] = [];
  for (let i = 0; i < count; i += 100) {
    await Promise.all(
      Array.from({ length: Math.min(100, count - i) }, () =>
        new Promise<void>((resolve) => {
          const socket = net.connect({ port, host: '127.0.0.1' });
          sockets.push(socket);
          socket.resume(); // read, so the server's close is seen
          socket.on('error', () => resolve());
          socket.on('connect', () => resolve());
          socket.on('close', () => resolve());
        }),
      ),
    );
  }
  return sockets;
}

async function until(condition: () => boolean, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (!condition() && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 50));
  return condition();
}

async function answers(target: Target, address = '127.0.0.1'): Promise<string> {
  const client = await PolicyClient.connect(target);
  try {
    return await client.ask({ client_address: address });
  } finally {
    client.close();
  }
}

/** The start-up line about the open-file limit, from the daemon started under `prlimit --nofile=LIMIT`. */
async function fileLimitLine(limit: number, config: string): Promise<Record<string, unknown>> {
  const path = join(mkdtempSync(join(tmpdir(), 'fcrdns-fds-')), 'fcrdns-policyd.conf');
  writeFileSync(path, config);
  const child = spawn('prlimit', [`--nofile=${limit}:${limit}`, process.execPath, BUNDLE, '--config', path], { stdio: ['ignore', 'pipe', 'inherit'] });
  let text = '';
  child.stdout.setEncoding('utf8');
  return new Promise((resolve, reject) => {
    child.stdout.on('data', (chunk: string) => {
      text += chunk;
      const line = text.split('\n').find((row) => row.includes('open-file limit'));
      if (line !== undefined) {
        child.kill('SIGKILL');
        resolve(JSON.parse(line) as Record<string, unknown>);
      }
    });
    child.on('exit', () => reject(new Error(`exited without the open-file line: ${text}`)));
  });
}

async function main(): Promise<void> {
  await t.test('the fd budget checked at start counts the metrics connections', async (t) => {
    // max_connections 4096 + 64 of the daemon's own = 4160 fit in 4170; with metrics, + 32 do not.
    const config = 'listen = 127.0.0.1:0\nmax_connections = 4096\n';
    t.match(await fileLimitLine(4170, config), { level: 'info', msg: 'open-file limit', open_file_limit: 4170 }, 'without metrics: enough');
    t.match(
      await fileLimitLine(4170, `${config}metrics_listen = 127.0.0.1:0\n`),
      { level: 'warn', open_file_limit: 4170, needed: 4192, metrics_connections: 32, msg: /cannot hold max_connections/ },
      'with metrics: 32 more needed, and said',
    );
  });

  await t.test('1,100 idle metrics connections under a 1,024 fd limit: at most 32 kept, the policy port answers', async (t) => {
    const daemon = await startBundle('listen = 127.0.0.1:0\nmetrics_listen = 127.0.0.1:0\nmode = strict\n');
    t.teardown(() => daemon.stop('SIGKILL'));
    const port = await metricsPort(daemon);
    const pid = daemon.child.pid ?? 0;
    limitFiles(pid);
    const before = openFiles(pid);
    const sockets = await idleConnections(port, 1100);
    const stillOpen = (): number => sockets.filter((socket) => !socket.destroyed && !socket.readableEnded).length;
    t.ok(await until(() => stillOpen() <= 32, 10_000), `${stillOpen()} of 1,100 left open (cap 32)`);
    const during = openFiles(pid);
    t.ok(during - before <= 34, `daemon fds ${before} -> ${during}`);
    t.equal(await answers({ port: daemon.port }), 'DUNNO', 'the policy port answers (127.0.0.1 is skipped)');
    const health = await get(port, '/healthz');
    t.same([health.status, health.body], [200, 'ok\n'], 'a new scrape gets in: /healthz ok');
    t.match((await get(port, '/metrics')).body, /\nfcrdns_policy_listener_up 1\n/, '/metrics: fcrdns_policy_listener_up 1');
    await daemon.waitFor((l) => l.msg === 'decision');
    await new Promise((resolve) => setTimeout(resolve, 400)); // past the 250 ms log flush
    t.equal(daemon.lines.filter((l) => l.msg === 'decision').length, 1, 'one decision line, the client\'s own: the health probes wrote none');
    const warns = daemon.lines.filter((l) => l.msg === 'metrics connection limit reached: closing the longest-open idle connection');
    t.ok(warns.length <= 5, `${warns.length} limit warnings written (the rest counted)`);
    sockets.forEach((socket) => socket.destroy());
  });

  await t.test('a peer outside metrics_allow is closed at once; idle and half-sent connections are closed in time', async (t) => {
    const daemon = await startBundle('listen = 127.0.0.1:0\nmetrics_listen = 127.0.0.1:0\nmetrics_allow = 192.0.2.0/24\nmode = strict\n');
    t.teardown(() => daemon.stop('SIGKILL'));
    const port = await metricsPort(daemon);
    await t.rejects(get(port, '/metrics'), 'no answer to 127.0.0.1');
    await daemon.waitFor((l) => l.msg === 'metrics connection from a peer outside metrics_allow closed' && l.peer === '127.0.0.1');
    t.pass('logged with the peer');
    t.match(await daemon.reload('listen = 127.0.0.1:0\nmetrics_listen = 127.0.0.1:0\nmetrics_allow = 192.0.2.0/24, 127.0.0.1\nmode = strict\n'), { msg: 'reloaded' });
    t.equal((await get(port, '/healthz')).status, 200, 'a reload\'s metrics_allow applies to new connections at once');

    const allowed = await startBundle('listen = 127.0.0.1:0\nmetrics_listen = 127.0.0.1:0\nmode = strict\n');
    t.teardown(() => allowed.stop('SIGKILL'));
    const open = await metricsPort(allowed);
    const [silent, halfSent] = await idleConnections(open, 2);
    halfSent?.write('GET /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\n');
    const started = Date.now();
    const closedAt = (socket: net.Socket | undefined): Promise<number> =>
      new Promise((resolve) => (socket?.destroyed ? resolve(0) : socket?.once('close', () => resolve(Date.now() - started))));
    const [silentMs, halfMs] = await Promise.all([closedAt(silent), closedAt(halfSent)]);
    t.ok(silentMs > 0 && silentMs < 20_000, `a connection that sends nothing closed after ${silentMs} ms (headers 5 s, idle 15 s)`);
    t.ok(halfMs > 0 && halfMs < 12_000, `a request whose headers never end closed after ${halfMs} ms (headers 5 s, request 10 s)`);
  });

  await t.test('/healthz fails while the fds are exhausted, and recovers', async (t) => {
    const daemon = await startBundle('listen = 127.0.0.1:0\nmetrics_listen = 127.0.0.1:0\nmax_connections = 4096\nmode = strict\n');
    t.teardown(() => daemon.stop('SIGKILL'));
    const port = await metricsPort(daemon);
    limitFiles(daemon.child.pid ?? 0);
    // The scraper's connection is open before the descriptors run out (a new one could not be accepted).
    const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
    t.teardown(() => agent.destroy());
    t.equal((await get(port, '/healthz', agent)).status, 200, 'healthy before');
    const flood: net.Socket[] = [];
    for (let batch = 0; batch < 11; batch++) {
      flood.push(...(await idleConnections(daemon.port, 100)));
      await get(port, '/healthz', agent); // keeps the scrape connection alive (keep-alive timeout 5 s)
    }
    const failing = await get(port, '/healthz', agent);
    t.ok(failing.reused, 'asked over the connection opened before');
    t.equal(failing.status, 503, '503 while accept() fails');
    t.match(failing.body, /^policy listener not answering: 127\.0\.0\.1:\d+: (EMFILE|no answer within)/, `says why: ${failing.body.trim()}`);
    t.match((await get(port, '/metrics', agent)).body, /\nfcrdns_policy_listener_up 0\n/, 'fcrdns_policy_listener_up 0');
    flood.forEach((socket) => socket.destroy());
    await new Promise((resolve) => setTimeout(resolve, 500));
    t.equal((await get(port, '/healthz', agent)).status, 200, 'healthy again once connections close');
    t.notOk(daemon.lines.some((l) => l.msg === 'decision'), 'no probe wrote a decision line');
  });

  await t.test('/healthz fails when the unix socket path is removed', async (t) => {
    const dir = mkdtempSync(join(tmpdir(), 'fcrdns-health-'));
    const path = join(dir, 'policy.sock');
    const daemon = await startBundle(`listen = unix:${path}\nmetrics_listen = 127.0.0.1:0\nmode = strict\n`);
    t.teardown(() => daemon.stop('SIGKILL'));
    const port = await metricsPort(daemon);
    t.equal((await get(port, '/healthz')).status, 200, 'healthy while the socket is there');
    t.equal(await answers({ path }), 'DUNNO', 'the socket answers');
    unlinkSync(path);
    const failing = await get(port, '/healthz');
    t.equal(failing.status, 503);
    t.equal(failing.body, `policy listener not answering: ${path}: ENOENT\n`);
  });
}

await whenAvailable(bundleMissing() ?? (hasCommand('prlimit') ? undefined : 'prlimit (util-linux) is missing'), 'metrics bounds', main);
