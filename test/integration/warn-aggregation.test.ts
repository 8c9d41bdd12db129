/**
 * Warnings aggregated (issue 24, item 6): the first few per kind per minute are written, the
 * rest counted in one summary line when the minute ends; decision lines are never held back.
 * On the real daemon: 20,000 connections sending `garbage\n` make fewer than 100 warn lines,
 * while every decision of a client asking in between is logged.
 */
import net from 'node:net';
import t from 'tap';
import { createStreamLogger, logAlways, logDecision, outcomeFields } from '../../src/log/logger.js';
import { WarningWindow, OTHER_KIND, type SuppressedKind } from '../../src/log/warning-window.js';
import { bundleMissing, startBundle } from '../helpers/bundle.js';
import { whenAvailable } from '../helpers/requirements.js';
import { PolicyClient } from '../helpers/policy-client.js';

t.test('a window: the first N per kind, then counted; a summary when it ends; a new window after', async (t) => {
  let now = 1_000;
  const summaries: SuppressedKind[][] = [];
  const window = new WarningWindow((kinds) => summaries.push(kinds), { perKind: 3, windowMs: 60_000, kindsTracked: 2, now: () => now });
  const admitted = Array.from({ length: 10 }, () => window.admit('broken request')).filter(Boolean).length;
  t.equal(admitted, 3, '3 of 10 of one kind');
  t.ok(window.admit('limit reached'), 'another kind has its own allowance');
  t.ok(window.admit('third kind'), 'past kindsTracked: counted as other kinds');
  for (let i = 0; i < 5; i++) window.admit('fourth kind');
  t.same(summaries, [], 'no summary before the window ends');
  now += 60_000;
  t.ok(window.admit('broken request'), 'a new window: written again');
  t.same(summaries, [[{ msg: 'broken request', logged: 3, suppressed: 7 }, { msg: OTHER_KIND, logged: 3, suppressed: 3 }]]);
  window.flush();
  t.equal(summaries.length, 1, 'nothing held back in the new window: no summary');
});

t.test('the summary comes when the minute ends, without another warning; decisions and logAlways lines pass', async (t) => {
  const lines: Array<Record<string, unknown>> = [];
  const logger = createStreamLogger('info', { write: (line) => lines.push(JSON.parse(line) as Record<string, unknown>) }, { perKind: 5, windowMs: 300 });
  const outcome = outcomeFields({ result: 'pass', action: 'dunno', reply: 'DUNNO' });
  const request = { clientAddress: '192.0.2.1', heloName: 'h', instance: 'i', queueId: 'q', protocolState: 'RCPT', recipient: 'r@example.org', saslUsername: '' };
  for (let i = 0; i < 200; i++) {
    logger.child({ conn: i }).warn({ problem: 'line without "="' }, 'closing connection after a broken request, without reply');
    logger.error({ err_code: 'EMFILE' }, 'listener error');
    logDecision(logger, request, outcome, true, 0.1);
  }
  logAlways(() => logger.warn({ key: 'mode' }, 'closing connection after a broken request, without reply'));
  t.equal(lines.filter((l) => l.msg === 'decision').length, 200, 'every decision line written');
  t.equal(lines.filter((l) => l.msg === 'closing connection after a broken request, without reply').length, 6, '5 warnings (child loggers share the window) + 1 logAlways');
  t.equal(lines.filter((l) => l.msg === 'listener error').length, 5, 'errors are aggregated too');
  await new Promise((resolve) => setTimeout(resolve, 500));
  const summary = lines.find((l) => String(l.msg).startsWith('warnings held back'));
  t.match(summary, { level: 'warn', suppressed: 390, kinds: [{ msg: 'closing connection after a broken request, without reply', logged: 5, suppressed: 195 }, { msg: 'listener error', logged: 5, suppressed: 195 }] });
});

await whenAvailable(bundleMissing(), 'warning flood against the daemon', async () => {
  await t.test('20,000 connections sending garbage: < 100 warn lines, every decision in between logged', async (t) => {
    const daemon = await startBundle('listen = 127.0.0.1:0\nmode = strict\n');
    t.teardown(() => daemon.stop('SIGKILL'));
    const total = 20_000;
    let closed = 0;
    let running = true;
    const broken = async (): Promise<void> => {
      await new Promise<void>((resolve) => {
        const socket = net.connect({ port: daemon.port, host: '127.0.0.1' }, () => socket.write('garbage\n'));
        socket.on('error', () => undefined);
        socket.on('close', () => resolve());
        socket.resume();
      });
      closed++;
    };
    // 127.0.0.1 is in the default skip_networks: a decision (skipped) without DNS.
    const client = await PolicyClient.connect({ port: daemon.port });
    let decisions = 0;
    const asking = (async () => {
      while (running) {
        if ((await client.ask({ client_address: '127.0.0.1' })) === 'DUNNO') decisions++;
        await new Promise((resolve) => setTimeout(resolve, 2));
      }
    })();
    const started = Date.now();
    let next = 0;
    await Promise.all(
      Array.from({ length: 100 }, async () => {
        while (next < total) {
          next++;
          await broken();
        }
      }),
    );
    running = false;
    await asking;
    client.close();
    const took = Date.now() - started;
    t.equal(closed, total, `${total} broken connections closed in ${took} ms`);
    t.ok(decisions > 50, `${decisions} decisions asked in between`);
    t.equal(await daemon.stop('SIGTERM'), 0, 'stopped');
    const warns = daemon.lines.filter((l) => l.level === 'warn');
    t.ok(warns.length < 100, `${warns.length} warn lines for ${total} broken connections`);
    t.equal(daemon.lines.filter((l) => l.msg === 'decision').length, decisions, 'every decision logged');
    const summary = daemon.lines.find((l) => String(l.msg).startsWith('warnings held back'));
    t.ok(summary, 'the count of what was held back is written at stop');
    const kinds = (summary?.kinds ?? []) as SuppressedKind[];
    t.equal(kinds.reduce((sum, kind) => sum + kind.logged + kind.suppressed, 0), total, 'written + held back = one warning per broken connection');
  });
});
