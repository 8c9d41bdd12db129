/**
 * Connection abuse: thousands of idle connections, a slowloris sender, a peer that pipelines
 * and never reads. Well-behaved clients, on connections opened before and during the flood,
 * keep getting correct answers; the cap closes the longest-idle connections; memory stays
 * bounded; each of these is logged.
 */
import net from 'node:net';
import t from 'tap';
import { parseConfig } from '../../src/config/config.js';
import { startDaemon } from '../../src/daemon/daemon.js';
import { createStreamLogger } from '../../src/log/logger.js';
import { PolicyClient, policyRequest } from '../helpers/policy-client.js';
import { zoneResolver } from '../helpers/zone-resolver.js';

const ZONES = {
  ptr: { '5.113.0.203.in-addr.arpa': ['mail.example.com'], '6.113.0.203.in-addr.arpa': ['wrong.example.com'] },
  a: { 'mail.example.com': ['203.0.113.5'], 'wrong.example.com': ['198.51.100.1'] },
};
const MISMATCH = '550 5.7.25 cannot find your hostname, [203.0.113.6]';

async function start(t: { teardown(fn: () => unknown): void }, configText: string, requestReadTimeoutMs?: number) {
  const lines: Array<Record<string, unknown>> = [];
  const logger = createStreamLogger('info', { write: (line: string) => lines.push(JSON.parse(line) as Record<string, unknown>) });
  const daemon = await startDaemon({
    config: parseConfig(`listen = 127.0.0.1:0\nmode = strict\n${configText}`, 'abuse.conf'),
    logger,
    resolver: zoneResolver(ZONES),
    ...(requestReadTimeoutMs ? { requestReadTimeoutMs } : {}),
  });
  t.teardown(() => daemon.close());
  return { daemon, lines, port: daemon.port ?? 0 };
}

function rawConnect(port: number): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const socket = net.connect(port, '127.0.0.1', () => resolve(socket));
    socket.once('error', reject);
  });
}

t.test('5,000 idle connections at the default cap: the longest-idle are closed, working clients are served', async (t) => {
  const { daemon, lines, port } = await start(t, '');
  const before = await PolicyClient.connect({ port });
  t.teardown(() => before.close());
  t.equal(await before.ask({ client_address: '203.0.113.6' }), MISMATCH);
  const idle: net.Socket[] = [];
  t.teardown(() => idle.forEach((socket) => socket.destroy()));
  const latencies: number[] = [];
  let during: PolicyClient | undefined;
  for (let i = 0; i < 5000; i += 250) {
    const batch = await Promise.all(Array.from({ length: 250 }, () => rawConnect(port)));
    batch.forEach((socket) => socket.on('error', () => undefined));
    idle.push(...batch);
    // The working connections stay active, as Postfix's are, so they are never the longest idle.
    const started = Date.now();
    t.equal(await before.ask({ client_address: '203.0.113.5' }), 'DUNNO');
    latencies.push(Date.now() - started);
    if (i === 2500) during = await PolicyClient.connect({ port });
    if (during) {
      const startedDuring = Date.now();
      t.equal(await during.ask({ client_address: '203.0.113.6' }), MISMATCH);
      latencies.push(Date.now() - startedDuring);
    }
  }
  t.teardown(() => during?.close());
  await new Promise((resolve) => setTimeout(resolve, 200));
  t.ok(daemon.serverStats.open <= 4096, `open connections ${daemon.serverStats.open} (cap 4096)`);
  t.ok(daemon.serverStats.evicted >= 5000 + 2 - 4096, `${daemon.serverStats.evicted} longest-idle connections closed`);
  t.ok(lines.some((line) => String(line.msg).includes('connection limit reached')), 'evictions are logged');
  const worst = Math.max(...latencies);
  t.ok(worst < 2000, `worst answer latency during the flood: ${worst} ms`);
  t.equal(await before.ask({ client_address: '203.0.113.6' }), MISMATCH, 'the connection from before the flood still works');
  t.comment(`idle flood: 5000 connections, ${daemon.serverStats.evicted} evicted, worst latency ${worst} ms`);
});

t.test('a slowloris sender is cut off by the read deadline and logged', async (t) => {
  const { lines, port } = await start(t, '', 400);
  const slow = await PolicyClient.connect({ port });
  const good = await PolicyClient.connect({ port });
  t.teardown(() => good.close());
  const bytes = Buffer.from(policyRequest({ client_address: '203.0.113.5' }));
  let sent = 0;
  const trickle = setInterval(() => {
    if (sent < bytes.length && !slow.closed) slow.socket.write(bytes.subarray(sent, ++sent));
  }, 20);
  t.teardown(() => clearInterval(trickle));
  t.equal(await good.ask({ client_address: '203.0.113.6' }), MISMATCH);
  t.ok(await slow.closedWithoutReply(3000), `closed after ${sent} of ${bytes.length} bytes`);
  t.ok(sent < bytes.length);
  t.ok(lines.some((line) => line.level === 'warn' && /not completed within/.test(String(line.problem))));
  t.equal(await good.ask({ client_address: '203.0.113.5' }), 'DUNNO');
});

t.test('a peer that pipelines and never reads is paused; memory stays bounded', async (t) => {
  // Long replies (reply_hint) fill the kernel's socket buffers sooner: the daemon answers cached
  // clients without waiting, so it keeps up with the flood until the replies back up.
  const { port } = await start(t, `reply_hint = ${'see https://example.org/rdns '.repeat(6).trim()}\n`);
  const good = await PolicyClient.connect({ port });
  t.teardown(() => good.close());
  const flooder = await rawConnect(port);
  flooder.on('error', () => undefined);
  flooder.pause(); // never read a reply
  t.teardown(() => flooder.destroy());
  const request = Buffer.from(policyRequest({ client_address: '203.0.113.6', instance: '' }));
  const rssBefore = process.memoryUsage().rss;
  let written = 0;
  // Write until the kernel and Node buffers push back, for at most 100,000 requests.
  while (written < 100_000) {
    const more = flooder.write(request);
    written++;
    if (!more) {
      const drained = await Promise.race([
        new Promise<boolean>((resolve) => flooder.once('drain', () => resolve(true))),
        new Promise<boolean>((resolve) => setTimeout(() => resolve(false), 500)),
      ]);
      if (!drained) break;
    }
  }
  t.ok(written < 100_000, `the server stopped reading after ${written} requests`);
  t.match(await good.ask({ client_address: '203.0.113.6' }), /^550 5\.7\.25 cannot find your hostname, \[203\.0\.113\.6\]; see /, 'others are still answered');
  const growth = (process.memoryUsage().rss - rssBefore) / 1024 / 1024;
  t.ok(growth < 200, `RSS grew ${growth.toFixed(1)} MiB`);
});
